// Package deploy holds no Go code that ships: it is the home of what
// operators deploy beside the ordo binary, and of the tests that keep those
// files true to the binary.
//
//   - prometheus/ordo-rules.yml: recording and alerting rules. Every metric
//     an expression names is one that a running ordo serve exposes on
//     /metrics (or a rule recorded in the same file), with the labels the
//     expression matches on; every alert has a severity, a summary and a
//     runbook_url naming a heading that exists in docs/. promtool checks
//     and unit-tests the file (make prom-rules).
//   - grafana/ordo-dashboard.json: the dashboard. The same metric check
//     holds for every panel query and template variable query; every panel
//     is per node (matches $instance) or per tenant (matches $tenant).
//   - systemd/ordo.service: the unit. `systemd-analyze verify` accepts it
//     without a word, with ExecStart pointing at a binary built by
//     `make build`.
//   - container/Containerfile: the image `make container` builds with
//     podman. It builds, and runs ordo serve as a non-root user until
//     SIGTERM ends it with exit status 0.
//
// The tests also hold `make build` to what `ordo version` prints.
package deploy
