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
)

// PromGate asks Prometheus an instant query (/api/v1/query) every Interval
// and compares the value with Value by Op. For a vector every series must
// satisfy the comparison. An empty result is not decided yet; an error is
// the reason (a rejected query, HTTP 400, fails at once; other errors are
// retried until Within). The gate passes once the comparison held Rise
// polls in a row, fails once it failed Fall polls in a row, and fails when
// Within elapsed without a pass.
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
		errs = append(errs, fmt.Errorf("url: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want http:// or https:// and a host", g.URL))
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

func (g PromGate) withDefaults() PromGate {
	if g.Rise == 0 {
		g.Rise = 1
	}
	if g.Fall == 0 {
		g.Fall = 1
	}
	if g.Interval == 0 {
		g.Interval = DefaultInterval
	}
	if g.Within == 0 {
		g.Within = DefaultWithin
	}
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
	wctx, cancel := context.WithTimeout(ctx, g.Within)
	defer cancel()
	want := fmt.Sprintf("%s %s %s", g.Query, g.Op, fmtFloat(g.Value))
	var (
		polls      int
		rise, fall int
		last       []string // the last poll's reasons
	)
	for {
		started := time.Now()
		samples, err := g.query(wctx)
		if wctx.Err() != nil {
			break
		}
		polls++
		var qe queryError
		switch {
		case errors.As(err, &qe) && qe.permanent:
			return Verdict{Gate: name, Reasons: []string{fmt.Sprintf("query %s: %v", g.Query, err)}}
		case err != nil:
			last = []string{fmt.Sprintf("poll %d: query %s: %v", polls, g.Query, err)}
		case len(samples) == 0:
			last = []string{fmt.Sprintf("poll %d: %s: no data", polls, g.Query)}
		default:
			var bad []string
			for _, s := range samples {
				if !g.compare(s.value) {
					bad = append(bad, fmt.Sprintf("%s = %s", s.series, fmtFloat(s.value)))
				}
			}
			if len(bad) == 0 {
				rise, fall = rise+1, 0
				head := fmt.Sprintf("poll %d: %s holds for %d series", polls, want, len(samples))
				if rise >= g.Rise {
					return Verdict{Gate: name, Pass: true, Reasons: []string{head + "; held " + inARow(rise)}}
				}
				last = []string{head}
			} else {
				rise, fall = 0, fall+1
				head := fmt.Sprintf("poll %d: want %s, %d of %d series do not", polls, want, len(bad), len(samples))
				last = append([]string{head}, round{failing: bad}.reasons()...)
				if fall >= g.Fall {
					last[0] += "; failed " + inARow(fall)
					return Verdict{Gate: name, Reasons: last}
				}
			}
		}
		if in.Progress != nil {
			in.Progress(Verdict{Gate: name, Pending: true, Reasons: last})
		}
		wait := time.NewTimer(time.Until(started.Add(g.Interval)))
		select {
		case <-wait.C:
			continue
		case <-wctx.Done():
			wait.Stop()
		}
		break
	}
	if ctx.Err() != nil {
		return pending(ctx, name, polls, last)
	}
	head := fmt.Sprintf("no verdict within %v after %d polls", g.Within, polls)
	return Verdict{Gate: name, Reasons: append([]string{head}, last...)}
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

// promResponse is the envelope of the Prometheus HTTP API.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

func (g PromGate) endpoint() string {
	u, _ := url.Parse(g.URL) // validated
	if !strings.HasSuffix(u.Path, "/api/v1/query") {
		u = u.JoinPath("api", "v1", "query")
	}
	return u.String()
}

// query runs the instant query once.
func (g PromGate) query(ctx context.Context) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	defer cancel()
	form := url.Values{"query": {g.Query}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.endpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := g.Client.Do(req)
	if err != nil {
		return nil, errors.New(errText(err, time.Since(start)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %s", errText(err, time.Since(start)))
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, queryError{msg: fmt.Sprintf("HTTP %s: not a Prometheus API answer", resp.Status),
			permanent: resp.StatusCode == http.StatusNotFound}
	}
	if pr.Status != "success" {
		return nil, queryError{msg: fmt.Sprintf("HTTP %s: %s: %s", resp.Status, pr.ErrorType, pr.Error),
			permanent: resp.StatusCode == http.StatusBadRequest}
	}
	return parseResult(pr.Data.ResultType, pr.Data.Result)
}

func parseResult(typ string, raw json.RawMessage) ([]sample, error) {
	switch typ {
	case "scalar":
		v, err := parseValue(raw)
		if err != nil {
			return nil, err
		}
		return []sample{{series: "scalar", value: v}}, nil
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  json.RawMessage   `json:"value"`
		}
		if err := json.Unmarshal(raw, &vec); err != nil {
			return nil, fmt.Errorf("bad vector: %w", err)
		}
		out := make([]sample, 0, len(vec))
		for _, s := range vec {
			v, err := parseValue(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{series: seriesName(s.Metric), value: v})
		}
		return out, nil
	}
	return nil, queryError{msg: fmt.Sprintf("result type %q: want an instant vector or a scalar", typ), permanent: true}
}

// parseValue decodes [<unix time>, "<value>"].
func parseValue(raw json.RawMessage) (float64, error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return 0, fmt.Errorf("bad sample %s", raw)
	}
	var s string
	if err := json.Unmarshal(pair[1], &s); err != nil {
		return 0, fmt.Errorf("bad sample %s", raw)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad sample value %q", s)
	}
	return v, nil
}

// seriesName renders labels the way Prometheus does: name{a="1", b="2"}.
func seriesName(m map[string]string) string {
	name := m["__name__"]
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		if name == "" {
			return "{}"
		}
		return name
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name)
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
