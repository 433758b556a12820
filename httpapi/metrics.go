package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus series of one server, on a registry of its own.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.HistogramVec
}

func newMetrics(d Deps) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyledger_http_request_duration_seconds",
			Help:    "HTTP requests by route, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"route", "method", "status"}),
	}
	m.registry.MustRegister(m.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if d.Views != nil {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_projection_position",
			Help: "Last log position committed to the PostgreSQL views by this instance's projector.",
		}, func() float64 { return float64(d.Views.Position()) }))
	}
	if d.App != nil {
		for kind, st := range d.App.CacheStats() {
			labels := prometheus.Labels{"aggregate": kind}
			m.registry.MustRegister(
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyledger_aggregate_cache_hits_total", ConstLabels: labels,
					Help: "Commands and reads that found their aggregate in this instance's cache."}, func() float64 { return float64(st.Hits.Load()) }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyledger_aggregate_cache_misses_total", ConstLabels: labels,
					Help: "Commands and reads that loaded their aggregate (from its snapshot and the log)."}, func() float64 { return float64(st.Misses.Load()) }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyledger_aggregate_cache_evictions_total", ConstLabels: labels,
					Help: "Aggregates dropped, least recently used first, to keep the cache within its budget."}, func() float64 { return float64(st.Evictions.Load()) }),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyledger_aggregate_cache_bytes", ConstLabels: labels,
					Help: "Estimated size of the cached aggregates (the budget bounds it)."}, func() float64 { return float64(st.Bytes.Load()) }),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyledger_aggregate_cache_entries", ConstLabels: labels,
					Help: "Aggregates in the cache."}, func() float64 { return float64(st.Entries.Load()) }))
		}
	}
	return m
}

// observe records every request after the error handler has written its status.
func (m *metrics) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		defer func() { // also for an answer cut short (handleError panics)
			route := c.Path()
			if route == "" || route == "/*" {
				route = "unmatched"
			}
			m.requests.WithLabelValues(route, methodLabel(c.Request().Method), statusLabel(c.Response().Status)).Observe(time.Since(start).Seconds())
		}()
		if err := next(c); err != nil {
			c.Error(err)
		}
		return nil
	}
}

func (m *metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}

var statusLabels = func() (out [600]string) {
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}()

// methodLabel keeps the label set bounded: a client may send any method name.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// statusLabel is strconv.Itoa without an allocation per request.
func statusLabel(code int) string {
	if code >= 0 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return strconv.Itoa(code)
}
