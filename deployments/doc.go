// Package deployments holds no code: its folder has the container image (Dockerfile),
// the compose setup (compose.yaml, nats.conf, haproxy.cfg, gen-secrets.sh) and the
// Kubernetes manifests (k8s/), and its tests load each of them with the official
// parsers and check them against the binary's own configuration. See
// docs/deployments.md.
package deployments
