// Package auditlog is the service side of the audit log: it publishes each
// organization's signed checkpoints into the log (Checkpointer), exports an
// organization's raw events in log order with their leaf indices (Export), and
// answers the auditors' questions through one facade (Trail) over the audit views,
// the log and the signing key.
package auditlog
