package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/cutover/cutover/internal/redact"
)

// PromGate asks Prometheus an instant query (/api/v1/query, through
// client_golang's API client) every Interval and compares the value with
// Value by Op. For a vector every series must satisfy the comparison. An
// empty result is not decided yet; an error is the reason (a rejected
// query, HTTP 400, fails at once; other errors are retried until Within).
// Warnings of the answer follow the poll's reasons ("warning: …"). The gate
// passes once the comparison held Rise polls in a row, fails once it failed
// Fall polls in a row, and fails when Within elapsed without a pass.
//
// URL may carry a secret (user:password@, a token in its query): the
// verdict's reasons and the errors name it redacted (internal/redact).
type PromGate struct {
	GateName string  // "" means "prometheus"
	URL      string  // Prometheus base URL, e.g. http://prometheus:9090
	Query    string  // PromQL, e.g. sum(rate(http_requests_total{code=~"5.."}[1m]))
	Op       string  // "<", "<=", ">", ">=", "==" or "!="
	Value    float64 // the threshold
	Within   time.Duration
	Interval time.Duration // 0: DefaultInterval
	Rise     int           // 0: 1
	Fall     int           // 0: 1
	Timeout  time.Duration // per request (0: 5s)
	Client   *http.Client  // nil: a client without proxy
}

// Name returns the gate's name.
func (g PromGate) Name() string {
	if g.GateName == "" {
		return "prometheus"
	}
	return g.GateName
}

var promOps = []string{"<", "<=", ">", ">=", "==", "!="}

// Validate reports whether the settings make sense.
func (g PromGate) Validate() error {
	var errs []error
	if u, err := url.Parse(g.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", redact.Wrap(err, g.URL)))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want http:// or https:// and a host", redact.URL(g.URL)))
	}
	if strings.TrimSpace(g.Query) == "" {
		errs = append(errs, errors.New("no query"))
	}
	if !slices.Contains(promOps, g.Op) {
		errs = append(errs, fmt.Errorf("op %q: want one of %s", g.Op, strings.Join(promOps, " ")))
	}
	if math.IsNaN(g.Value) {
		errs = append(errs, errors.New("value is NaN"))
	}
	if g.Rise < 0 || g.Fall < 0 {
		errs = append(errs, fmt.Errorf("rise %d and fall %d must not be negative", g.Rise, g.Fall))
	}
	if g.Interval < 0 || g.Timeout < 0 || g.Within < 0 {
		errs = append(errs, fmt.Errorf("interval %v, timeout %v and within %v must not be negative", g.Interval, g.Timeout, g.Within))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gate %s: %w", g.Name(), err)
	}
	return nil
}

// withDefaults fills in the request's defaults; Poll has those of the
// schedule.
func (g PromGate) withDefaults() PromGate {
	if g.Timeout == 0 {
		g.Timeout = 5 * time.Second
	}
	if g.Client == nil {
		g.Client = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	return g
}

func (g PromGate) compare(v float64) bool {
	switch g.Op {
	case "<":
		return v < g.Value
	case "<=":
		return v <= g.Value
	case ">":
		return v > g.Value
	case ">=":
		return v >= g.Value
	case "==":
		return v == g.Value
	case "!=":
		return v != g.Value
	}
	return false
}

// Check polls until the gate decides, Within elapses or ctx ends.
func (g PromGate) Check(ctx context.Context, in Input) Verdict {
	name := g.Name()
	if err := g.Validate(); err != nil {
		return Verdict{Gate: name, Reasons: []string{err.Error()}}
	}
	g = g.withDefaults()
	c, err := g.client()
	if err != nil {
		return Verdict{Gate: name, Reasons: []string{fmt.Sprintf("gate %s: %s", name, redact.Error(err, g.URL))}}
	}
	want := fmt.Sprintf("%s %s %s", g.Query, g.Op, fmtFloat(g.Value))
	return g.poll().Run(ctx, name, in.Progress, func(ctx context.Context, n int) Round {
		return g.round(ctx, c, n, want)
	}).Verdict
}

// poll is the gate's schedule.
func (g PromGate) poll() Poll {
	return Poll{Interval: g.Interval, Within: g.Within, Rise: g.Rise, Fall: g.Fall}
}

// round asks the query once and judges the answer: an empty result or an
// error worth retrying is undecided, a rejected query is fatal.
func (g PromGate) round(ctx context.Context, c api.Client, n int, want string) Round {
	samples, warnings, err := g.query(ctx, c)
	var qe queryError
	switch {
	case errors.As(err, &qe) && qe.permanent:
		return Round{Outcome: RoundFatal, Verdict: Verdict{Reasons: []string{fmt.Sprintf("query %s: %v", g.Query, err)}}}
	case err != nil:
		return Round{Verdict: Verdict{Reasons: []string{fmt.Sprintf("poll %d: query %s: %v", n, g.Query, err)}}}
	case len(samples) == 0:
		head := fmt.Sprintf("poll %d: %s: no data", n, g.Query)
		return Round{Verdict: Verdict{Reasons: append([]string{head}, warningReasons(warnings)...)}}
	}
	var bad []string
	for _, s := range samples {
		if !g.compare(s.value) {
			bad = append(bad, fmt.Sprintf("%s = %s", s.series, fmtFloat(s.value)))
		}
	}
	if len(bad) == 0 {
		head := fmt.Sprintf("poll %d: %s holds for %d series", n, want, len(samples))
		return Round{Outcome: RoundHeld, Verdict: Verdict{Reasons: append([]string{head}, warningReasons(warnings)...)}}
	}
	head := fmt.Sprintf("poll %d: want %s, %d of %d series do not", n, want, len(bad), len(samples))
	reasons := append([]string{head}, capReasons(bad)...)
	return Round{Outcome: RoundFailed, Verdict: Verdict{Reasons: append(reasons, warningReasons(warnings)...)}}
}

// maxReasonWarnings is how many of an answer's warnings a verdict lists;
// the rest are counted.
const maxReasonWarnings = 5

// warningReasons words the warnings of Prometheus's answer ("warning: ...").
func warningReasons(ws []string) []string {
	var out []string
	for i, w := range ws {
		if i == maxReasonWarnings {
			out = append(out, fmt.Sprintf("and %d more warnings", len(ws)-i))
			break
		}
		out = append(out, "warning: "+w)
	}
	return out
}

// sample is one series of an instant query's result.
type sample struct {
	series string // `up{job="x"}`, or "scalar"
	value  float64
}

type queryError struct {
	msg       string
	permanent bool // retrying will not help
}

func (e queryError) Error() string { return e.msg }

// client returns the API client for g.URL, which may name the query
// endpoint itself (…/api/v1/query).
func (g PromGate) client() (api.Client, error) {
	u, err := url.Parse(g.URL)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(u.Path, "/api/v1/query") {
		u.Path = strings.TrimSuffix(u.Path, "/api/v1/query")
		u.RawPath = strings.TrimSuffix(u.RawPath, "/api/v1/query")
	}
	c := *g.Client
	c.Transport = limitBody{c.Transport}
	return api.NewClient(api.Config{Address: u.String(), Client: &c})
}

// maxAnswer is the most of an answer PromGate reads; a longer one does not
// decode and so is "not a Prometheus API answer".
const maxAnswer = 16 << 20

// limitBody cuts answers off after maxAnswer bytes.
type limitBody struct{ base http.RoundTripper }

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	base := l.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, maxAnswer), resp.Body}
	}
	return resp, err
}

// query runs the instant query once and returns its samples and the
// answer's warnings.
func (g PromGate) query(ctx context.Context, c api.Client) ([]sample, v1.Warnings, error) {
	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	defer cancel()
	a := &answer{Client: c}
	start := time.Now()
	val, warnings, _, err := v1.NewAPI(a).Query(ctx, g.Query, time.Time{})
	if err != nil {
		// net/http's errors name the URL asked (g.URL's endpoint).
		return nil, nil, a.error(redact.Wrap(err, g.URL), time.Since(start))
	}
	s, err := samples(val)
	if err != nil {
		return nil, nil, err
	}
	return s, warnings, nil
}

// answer is an api.Client that keeps the last HTTP answer: the v1 API
// tells neither its status nor, for some statuses, the error Prometheus
// sent (it says "server error: 503" for {"errorType":"unavailable",…}).
type answer struct {
	api.Client
	resp *http.Response
	body []byte
}

// Do does the request and keeps the answer.
func (a *answer) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := a.Client.Do(ctx, req)
	a.resp, a.body = resp, body
	return resp, body, err
}

// promResponse is the envelope of the Prometheus HTTP API.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string `json:"resultType"`
	} `json:"data"`
}

// error words the error of the v1 API's Query: "connection refused",
// "HTTP 400 Bad Request: bad_data: …". Errors retrying will not help are
// permanent: a rejected query (400), a wrong URL (404), a result that is
// not instant.
func (a *answer) error(err error, took time.Duration) error {
	var ae *v1.Error
	switch {
	case a.resp == nil: // no answer
		return errors.New(errText(err, took))
	case !errors.As(err, &ae): // answer cut short (timeout, ctx)
		return fmt.Errorf("read answer: %s", errText(err, took))
	}
	status, code := a.resp.Status, a.resp.StatusCode
	typ, msg := string(ae.Type), ae.Msg
	switch ae.Type {
	case v1.ErrClient, v1.ErrServer, v1.ErrBadResponse:
		// Made up by the v1 API, which could not decode the answer or
		// did not for its status: read it here.
		notAPI := queryError{msg: fmt.Sprintf("HTTP %s: not a Prometheus API answer", status), permanent: code == http.StatusNotFound}
		var pr promResponse
		switch {
		case json.Unmarshal(a.body, &pr) != nil:
			return notAPI
		case pr.Status == "error":
			typ, msg = pr.ErrorType, pr.Error
		case pr.Status == "success" && code/100 == 2 && !slices.Contains([]string{"vector", "scalar", "matrix"}, pr.Data.ResultType):
			return instantOnly(pr.Data.ResultType)
		default:
			return notAPI
		}
	}
	return queryError{msg: fmt.Sprintf("HTTP %s: %s: %s", status, typ, msg), permanent: code == http.StatusBadRequest}
}

func instantOnly(typ string) error {
	return queryError{msg: fmt.Sprintf("result type %q: want an instant vector or a scalar", typ), permanent: true}
}

// samples returns the series of an instant vector, or the scalar.
func samples(v model.Value) ([]sample, error) {
	switch v := v.(type) {
	case *model.Scalar:
		return []sample{{series: "scalar", value: float64(v.Value)}}, nil
	case model.Vector:
		out := make([]sample, 0, len(v))
		for _, s := range v {
			if s == nil {
				return nil, errors.New("bad sample: null")
			}
			if s.Histogram != nil {
				return nil, fmt.Errorf("bad sample: %s is a native histogram, want a float", seriesName(s.Metric))
			}
			out = append(out, sample{series: seriesName(s.Metric), value: float64(s.Value)})
		}
		return out, nil
	case nil:
		return nil, instantOnly("")
	}
	return nil, instantOnly(v.Type().String())
}

// seriesName renders labels the way Prometheus does: name{a="1", b="2"}.
func seriesName(m model.Metric) string {
	name := m[model.MetricNameLabel]
	keys := make([]model.LabelName, 0, len(m))
	for k := range m {
		if k != model.MetricNameLabel {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		if name == "" {
			return "{}"
		}
		return string(name)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(string(name))
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
