package health

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
)

// promServer answers /api/v1/query with the bodies in turn (the last one
// repeats) and records the queries.
type promServer struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	answer []promAnswer
	polls  int
	seen   []string
}

type promAnswer struct {
	code int
	body string
}

func (p *promServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != p.prefix+"/api/v1/query" || r.Method != http.MethodPost {
		p.t.Errorf("request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	p.mu.Lock()
	a := p.answer[min(p.polls, len(p.answer)-1)]
	p.polls++
	p.seen = append(p.seen, r.FormValue("query"))
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.code)
	fmt.Fprint(w, a.body)
}

func vector(samples ...string) promAnswer {
	body := `{"status":"success","data":{"resultType":"vector","result":[`
	for i, s := range samples {
		if i > 0 {
			body += ","
		}
		body += s
	}
	return promAnswer{200, body + `]}}`}
}

const (
	okA   = `{"metric":{"__name__":"errors","job":"web","instance":"a"},"value":[1700000000.1,"0.5"]}`
	okB   = `{"metric":{"__name__":"errors","job":"web","instance":"b"},"value":[1700000000.1,"0"]}`
	badB  = `{"metric":{"__name__":"errors","job":"web","instance":"b"},"value":[1700000000.1,"3"]}`
	nanA  = `{"metric":{"job":"web"},"value":[1700000000.1,"NaN"]}`
	empty = `{"status":"success","data":{"resultType":"vector","result":[]}}`
)

func TestPromGate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []promAnswer
		gate    PromGate
		prefix  string
		want    Verdict
		polls   int
	}{
		{
			name:    "vector holds",
			answers: []promAnswer{vector(okA, okB)},
			want:    Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 1: errors < 1 holds for 2 series; held 1 round"}},
			polls:   1,
		},
		{
			name:    "vector fails",
			answers: []promAnswer{vector(okA, badB)},
			want: Verdict{Gate: "prometheus", Reasons: []string{
				"poll 1: want errors < 1, 1 of 2 series do not; failed 1 round",
				`errors{instance="b", job="web"} = 3`}},
			polls: 1,
		},
		{
			name:    "NaN fails",
			answers: []promAnswer{vector(nanA)},
			want: Verdict{Gate: "prometheus", Reasons: []string{
				"poll 1: want errors < 1, 1 of 1 series do not; failed 1 round", `{job="web"} = NaN`}},
			polls: 1,
		},
		{
			name:    "empty result is not decided: pass later",
			answers: []promAnswer{{200, empty}, {200, empty}, vector(okA)},
			want:    Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 3: errors < 1 holds for 1 series; held 1 round"}},
			polls:   3,
		},
		{
			name:    "rise 2 and fall 2",
			answers: []promAnswer{vector(okA), vector(badB), vector(okA), vector(okA)},
			gate:    PromGate{Rise: 2, Fall: 2},
			want:    Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 4: errors < 1 holds for 1 series; held 2 rounds in a row"}},
			polls:   4,
		},
		{
			name:    "scalar",
			answers: []promAnswer{{200, `{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"7"]}}`}},
			gate:    PromGate{Query: "scalar(sum(up))", Op: ">=", Value: 7},
			want:    Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 1: scalar(sum(up)) >= 7 holds for 1 series; held 1 round"}},
			polls:   1,
		},
		{
			name: "bad query fails at once",
			answers: []promAnswer{{400, `{"status":"error","errorType":"bad_data",` +
				`"error":"invalid parameter \"query\": 1:8: parse error: unexpected \"<\""}`}},
			want: Verdict{Gate: "prometheus", Reasons: []string{
				`query errors: HTTP 400 Bad Request: bad_data: invalid parameter "query": 1:8: parse error: unexpected "<"`}},
			polls: 1,
		},
		{
			name:    "server error is retried",
			answers: []promAnswer{{503, `{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`}, vector(okA)},
			want:    Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 2: errors < 1 holds for 1 series; held 1 round"}},
			polls:   2,
		},
		{
			name:    "matrix is not an instant result",
			answers: []promAnswer{{200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`}},
			want:    Verdict{Gate: "prometheus", Reasons: []string{`query errors: result type "matrix": want an instant vector or a scalar`}},
			polls:   1,
		},
		{
			name:    "path prefix and custom name",
			prefix:  "/prom",
			answers: []promAnswer{vector(okB)},
			gate:    PromGate{GateName: "5xx", Op: "==", Value: 0},
			want:    Verdict{Gate: "5xx", Pass: true, Reasons: []string{"poll 1: errors == 0 holds for 1 series; held 1 round"}},
			polls:   1,
		},
		{
			name:    "bad settings",
			answers: []promAnswer{vector(okA)},
			gate:    PromGate{URL: "ftp://x", Op: "=~", Query: " "},
			want: Verdict{Gate: "prometheus", Reasons: []string{`gate prometheus: url "ftp://x": want http:// or https:// and a host` +
				"\nno query\nop \"=~\": want one of < <= > >= == !="}},
			polls: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := &promServer{t: t, prefix: tc.prefix, answer: tc.answers}
			srv := httptest.NewServer(ps)
			defer srv.Close()
			g := tc.gate
			if g.URL == "" {
				g.URL = srv.URL + tc.prefix
			}
			if g.Query == "" {
				g.Query = "errors"
			}
			if g.Op == "" {
				g.Op, g.Value = "<", 1
			}
			g.Interval, g.Within = time.Millisecond, time.Minute
			assertVerdict(t, g.Check(context.Background(), Input{}), tc.want)
			if ps.polls != tc.polls {
				t.Errorf("%d polls, want %d", ps.polls, tc.polls)
			}
			for _, q := range ps.seen {
				if q != g.Query {
					t.Errorf("query %q, want %q", q, g.Query)
				}
			}
		})
	}
}

func TestPromGateWithin(t *testing.T) {
	ps := &promServer{t: t, answer: []promAnswer{{200, empty}}}
	srv := httptest.NewServer(ps)
	defer srv.Close()
	g := PromGate{URL: srv.URL, Query: "up", Op: "==", Value: 1, Interval: 50 * time.Millisecond, Within: 2 * time.Second}
	v := g.Check(context.Background(), Input{})
	if v.Pass || v.Pending || len(v.Reasons) != 2 {
		t.Fatalf("verdict %+v", v)
	}
	m := regexp.MustCompile(`^no verdict within 2s after (\d+) polls$`).FindStringSubmatch(v.Reasons[0])
	if m == nil || v.Reasons[1] != "poll "+m[1]+": up: no data" {
		t.Errorf("reasons %q", v.Reasons)
	}

	// Unreachable: the last error is the reason.
	srv.Close()
	v = g.Check(context.Background(), Input{})
	if v.Pass || len(v.Reasons) != 2 || !regexp.MustCompile(`^poll \d+: query up: connection refused$`).MatchString(v.Reasons[1]) {
		t.Errorf("unreachable: %+v", v)
	}
}

func TestPromOps(t *testing.T) {
	for _, tc := range []struct {
		op   string
		v    float64
		want bool
	}{
		{"<", 0.9, true}, {"<", 1, false},
		{"<=", 1, true}, {"<=", 1.1, false},
		{">", 1.1, true}, {">", 1, false},
		{">=", 1, true}, {">=", 0.9, false},
		{"==", 1, true}, {"==", 2, false},
		{"!=", 2, true}, {"!=", 1, false},
	} {
		if got := (PromGate{Op: tc.op, Value: 1}).compare(tc.v); got != tc.want {
			t.Errorf("%v %s 1 = %v, want %v", tc.v, tc.op, got, tc.want)
		}
	}
}
