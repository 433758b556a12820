package httpapi

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"
)

// opsRoutes are the routes of operations: health, readiness, metrics and the contract.
func (s *Server) opsRoutes() []route {
	return []route{
		{method: "GET", path: "/healthz", id: "healthz", summary: "Liveness", status: 200, response: Health{}, handler: s.healthz},
		{method: "GET", path: "/readyz", id: "readyz", summary: "Readiness: NATS, PostgreSQL, projection lag, credential index, presence", status: 200, response: Health{}, handler: s.readyz},
		{method: "GET", path: "/metrics", id: "metrics", summary: "Prometheus metrics (text exposition format)", status: 200, handler: s.metrics.handler()},
		{method: "GET", path: "/openapi.json", id: "openapi", summary: "This document", status: 200, response: map[string]any{}, handler: s.openapi},
		{method: "GET", path: "/asyncapi.json", id: "asyncapi", summary: "The AsyncAPI 3 document of the event and usage streams (docs/events.md)", status: 200, response: map[string]any{}, handler: s.asyncapi},
	}
}

func (s *Server) healthz(c echo.Context) error {
	return respond(c, 200, Health{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	h := Health{Status: "ok", Checks: map[string]string{}}
	for name, check := range s.d.Ready {
		if err := check(ctx); err != nil {
			h.Status, h.Checks[name] = "unavailable", err.Error()
		} else {
			h.Checks[name] = "ok"
		}
	}
	for name, check := range s.d.Reported {
		if err := check(ctx); err != nil {
			h.Checks[name] = err.Error()
		} else {
			h.Checks[name] = "ok"
		}
	}
	status := 200
	if h.Status != "ok" {
		status = 503
	}
	return respond(c, status, h)
}

func (s *Server) asyncapi(c echo.Context) error {
	return c.JSONBlob(200, s.d.StreamsDocument)
}

func (s *Server) openapi(c echo.Context) error {
	return respond(c, 200, s.OpenAPI())
}
