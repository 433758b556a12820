package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Point-in-time reads: as_of on a resource's read answers the resource as it stood
// at that instant, rebuilt from the log (a key deleted since included, masked as
// always), in the resource's one representation. Who may read it is decided as of
// now.

var asOfQuery = []param{{name: "as_of", description: "an RFC 3339 instant, not in the future: the resource as it stood then, rebuilt from the log"}}

// asOf reads as_of; ok is false when the read has none.
func asOf(c echo.Context) (time.Time, bool, error) {
	v := c.QueryParam("as_of")
	if v == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, true, invalidField("as_of", "invalid_time", "an RFC 3339 time such as 2026-12-01T00:00:00Z")
	}
	if t.After(time.Now()) {
		return t, true, invalidField("as_of", "in_the_future", "an instant in the past")
	}
	return t, true, nil
}

// answerAt answers a point-in-time read with the entity tag of the version then.
func answerAt(c echo.Context, etag string, body any, err error) error {
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag)
	return respond(c, http.StatusOK, body)
}
