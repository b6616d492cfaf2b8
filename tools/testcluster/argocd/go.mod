// Pins the Argo CD release whose CRDs (manifests/crds/*-crd.yaml) the test cluster installs.
// Only the module zip is downloaded (build.sh crds-dir); nothing here is compiled, which is why
// this is a separate module: Argo CD must not perturb the Kubernetes build graph in ../go.mod.
module mip.invalid/testcluster/argocd

go 1.24.0

require github.com/argoproj/argo-cd/v3 v3.2.12
