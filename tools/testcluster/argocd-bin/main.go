// Command argocd runs one Argo CD component, chosen like upstream's cmd/main.go: by the
// ARGOCD_BINARY_NAME environment variable, else by the name it was invoked as. Only the
// components the test cluster runs are linked in (the CLI, API server, dex and notifications
// are not), which keeps the build small. mip-git-https-server (gitserver.go) is mip's own:
// a loopback HTTPS front for git-http-backend.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	appcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	applicationset "github.com/argoproj/argo-cd/v3/cmd/argocd-applicationset-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v3/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
	// As upstream: klog goes through Argo CD's logger, with its level and format.
	klog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
	name := filepath.Base(os.Args[0])
	if v := os.Getenv("ARGOCD_BINARY_NAME"); v != "" {
		name = v
	}
	var command *cobra.Command
	switch name {
	case "mip-git-https-server":
		os.Exit(gitHTTPSServer(os.Args[1:]))
	case "argocd-application-controller":
		command = appcontroller.NewCommand()
	case "argocd-applicationset-controller":
		command = applicationset.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	case "argocd-git-ask-pass", "argocd":
		// The repo-server runs git with GIT_ASKPASS=argocd and
		// ARGOCD_BINARY_NAME=argocd-git-ask-pass (credentialed HTTPS repositories only).
		command = gitaskpass.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "argocd: unknown component %q (argocd-application-controller, "+
			"argocd-applicationset-controller, argocd-repo-server, argocd-git-ask-pass, mip-git-https-server)\n", name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
