// Package domain holds keyledger's aggregates (Organization, Workspace), the events
// they decide, and the pure rules around credentials and IP allowlists.
//
// The package never does I/O: randomness and time are passed in by the caller, and
// every exported behaviour returns the events it decided without changing state;
// state changes only when those events are applied (after they were appended to the
// log, or while rebuilding from it).
package domain
