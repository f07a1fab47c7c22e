// Package validate checks pop2imap's Kubernetes manifests, the YAML files
// in deploy/kubernetes, without a cluster: Load decodes every document
// strictly into the official API types (an unknown or misspelt field is an
// error, as it is to kubectl apply --validate=strict), and Set.Check tests
// the properties that pop2imap batch depends on and that no API server
// checks: that pod i runs shard i of as many shards as the Job has
// completions, that exit codes 2 and 3 fail their index instead of being
// retried, that the CSV reaches pop2imap as a file only its user can read,
// and that the state directory is the shared volume.
//
// It is a module of its own, so that the main module does not carry the
// k8s.io dependencies; `go test ./...` in this directory runs it on the
// manifests beside it.
package validate
