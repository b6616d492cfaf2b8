package main

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
)

// gitHTTPSServer serves the Git repositories under a directory over HTTPS with git's own
// smart-HTTP CGI program, for the test cluster's Argo CD tier (mip's inventories take
// https:// repository URLs, not file://).
//
//	mip-git-https-server <listen address> <repositories dir> <cert file> <key file> <git-http-backend>
func gitHTTPSServer(args []string) int {
	if len(args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: mip-git-https-server ADDRESS ROOT CERT KEY GIT_HTTP_BACKEND")
		return 2
	}
	address, root, cert, key, backend := args[0], args[1], args[2], args[3], args[4]
	handler := &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		// git needs HOME and PATH; nothing else from this process.
		InheritEnv: []string{"HOME", "PATH", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL"},
	}
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, "%s %s\n", r.Method, r.URL)
		handler.ServeHTTP(w, r)
	})
	fmt.Fprintf(os.Stderr, "serving %s on https://%s\n", root, address)
	if err := http.ListenAndServeTLS(address, cert, key, logged); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
