// Package fault classifies errors of dependencies so the HTTP layer can answer
// without knowing which client library raised them: "a dependency is down or too
// slow" (503), or "the dependency refused the input" (400).
package fault

import (
	"errors"
	"strings"
)

// ErrUnavailable is matched with errors.Is by the HTTP error mapper (503).
var ErrUnavailable = errors.New("dependency unavailable")

// ErrRefusedInput is matched with errors.Is by the HTTP error mapper (400): a
// dependency refused a value as invalid data (PostgreSQL's SQLSTATE class 22, such
// as invalid UTF-8), which is the client's input, not an outage.
var ErrRefusedInput = errors.New("the input was refused as invalid data")

type classified struct {
	err  error
	kind error
}

func (c classified) Error() string { return c.err.Error() }
func (c classified) Unwrap() []error {
	return []error{c.err, c.kind}
}

// Unavailable wraps err so that errors.Is(err, ErrUnavailable) holds, unless the
// dependency refused the data itself (an error with an SQLSTATE of class 22), which
// matches ErrRefusedInput instead; nil stays nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) && strings.HasPrefix(state.SQLState(), "22") {
		return classified{err, ErrRefusedInput}
	}
	return classified{err, ErrUnavailable}
}
