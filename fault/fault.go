// Package fault marks errors that mean "a dependency is down or too slow", so the
// HTTP layer can answer 503 without knowing which client library raised them.
package fault

import "errors"

// ErrUnavailable is matched with errors.Is by the HTTP error mapper (503).
var ErrUnavailable = errors.New("dependency unavailable")

type unavailable struct{ err error }

func (u unavailable) Error() string { return u.err.Error() }
func (u unavailable) Unwrap() []error {
	return []error{u.err, ErrUnavailable}
}

// Unavailable wraps err so that errors.Is(err, ErrUnavailable) holds; nil stays nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailable{err}
}
