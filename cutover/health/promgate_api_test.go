package health

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPromGateAnswers: how the answers of Prometheus (and of what may
// stand in front of it) read in the verdict and in the progress verdicts,
// which carry the reasons of the polls that did not decide.
func TestPromGateAnswers(t *testing.T) {
	const (
		warned = `{"status":"success","warnings":["PromQL warning: encountered a mix of histograms and floats"],` +
			`"data":{"resultType":"vector","result":[` + okA + `]}}`
		warnedBad    = `{"status":"success","warnings":["w1","w2"],"data":{"resultType":"vector","result":[` + okA + `,` + badB + `]}}`
		manyWarnings = `{"status":"success","warnings":["w1","w2","w3","w4","w5","w6","w7"],"data":{"resultType":"vector","result":[]}}`
		histogram    = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"lat"},` +
			`"histogram":[1700000000.1,{"count":"2","sum":"3","buckets":[[0,"0","1","2"]]}]}]}}`
	)
	for _, tc := range []struct {
		name     string
		answers  []promAnswer
		url      string // appended to the server's URL
		prefix   string
		want     Verdict
		progress []string // the reasons of each progress verdict, joined by |
		polls    int
	}{
		{
			name:    "warnings follow the reasons of a pass",
			answers: []promAnswer{{200, warned}},
			want: Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 1: errors < 1 holds for 1 series; held 1 round",
				"warning: PromQL warning: encountered a mix of histograms and floats"}},
			polls: 1,
		},
		{
			name:    "warnings follow the failing series",
			answers: []promAnswer{{200, warnedBad}},
			want: Verdict{Gate: "prometheus", Reasons: []string{"poll 1: want errors < 1, 1 of 2 series do not; failed 1 round",
				`errors{instance="b", job="web"} = 3`, "warning: w1", "warning: w2"}},
			polls: 1,
		},
		{
			name:     "warnings of an empty result are counted past five",
			answers:  []promAnswer{{200, manyWarnings}, vector(okA)},
			want:     Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 2: errors < 1 holds for 1 series; held 1 round"}},
			progress: []string{"poll 1: errors: no data|warning: w1|warning: w2|warning: w3|warning: w4|warning: w5|and 2 more warnings"},
			polls:    2,
		},
		{
			name: "unavailable: the error Prometheus sent, retried",
			answers: []promAnswer{{503, `{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`},
				{500, `{"status":"error","errorType":"internal","error":"boom"}`}, vector(okA)},
			want: Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 3: errors < 1 holds for 1 series; held 1 round"}},
			progress: []string{
				"poll 1: query errors: HTTP 503 Service Unavailable: unavailable: TSDB not ready",
				"poll 2: query errors: HTTP 500 Internal Server Error: internal: boom"},
			polls: 3,
		},
		{
			name: "execution error and a proxy's page are retried",
			answers: []promAnswer{{422, `{"status":"error","errorType":"execution","error":"query timed out"}`},
				{502, `<html>bad gateway</html>`}, {200, `{"status":"error","errorType":"execution","error":"odd"}`},
				{200, `not json`}, {400, `<html>bad request</html>`}, vector(okA)},
			want: Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 6: errors < 1 holds for 1 series; held 1 round"}},
			progress: []string{
				"poll 1: query errors: HTTP 422 Unprocessable Entity: execution: query timed out",
				"poll 2: query errors: HTTP 502 Bad Gateway: not a Prometheus API answer",
				"poll 3: query errors: HTTP 200 OK: execution: odd",
				"poll 4: query errors: HTTP 200 OK: not a Prometheus API answer",
				"poll 5: query errors: HTTP 400 Bad Request: not a Prometheus API answer"},
			polls: 6,
		},
		{
			name:    "not found fails at once",
			answers: []promAnswer{{404, `404 page not found`}},
			want:    Verdict{Gate: "prometheus", Reasons: []string{"query errors: HTTP 404 Not Found: not a Prometheus API answer"}},
			polls:   1,
		},
		{
			name:    "a string is not an instant result",
			answers: []promAnswer{{200, `{"status":"success","data":{"resultType":"string","result":[1700000000.1,"x"]}}`}},
			want:    Verdict{Gate: "prometheus", Reasons: []string{`query errors: result type "string": want an instant vector or a scalar`}},
			polls:   1,
		},
		{
			name:     "a native histogram is retried",
			answers:  []promAnswer{{200, histogram}, vector(okA)},
			want:     Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 2: errors < 1 holds for 1 series; held 1 round"}},
			progress: []string{"poll 1: query errors: bad sample: lat is a native histogram, want a float"},
			polls:    2,
		},
		{
			name: "labels in the order of their names",
			answers: []promAnswer{vector(`{"metric":{"__name__":"errors","a1":"2","a":"1","a_b":"3"},"value":[1700000000.1,"5"]}`,
				`{"metric":{},"value":[1700000000.1,"6"]}`)},
			want: Verdict{Gate: "prometheus", Reasons: []string{"poll 1: want errors < 1, 2 of 2 series do not; failed 1 round",
				`errors{a="1", a1="2", a_b="3"} = 5`, `{} = 6`}},
			polls: 1,
		},
		{
			name:    "the URL may name the endpoint",
			prefix:  "/prom",
			url:     "/prom/api/v1/query",
			answers: []promAnswer{vector(okA)},
			want:    Verdict{Gate: "prometheus", Pass: true, Reasons: []string{"poll 1: errors < 1 holds for 1 series; held 1 round"}},
			polls:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := &promServer{t: t, prefix: tc.prefix, answer: tc.answers}
			srv := httptest.NewServer(ps)
			defer srv.Close()
			if tc.url == "" {
				tc.url = tc.prefix
			}
			var mu sync.Mutex
			var progress []string
			in := Input{Progress: func(v Verdict) {
				mu.Lock()
				defer mu.Unlock()
				if !v.Pending || v.Pass || v.Gate != "prometheus" {
					t.Errorf("progress %+v", v)
				}
				progress = append(progress, strings.Join(v.Reasons, "|"))
			}}
			g := PromGate{URL: srv.URL + tc.url, Query: "errors", Op: "<", Value: 1, Interval: time.Millisecond, Within: time.Minute}
			assertVerdict(t, g.Check(context.Background(), in), tc.want)
			if ps.polls != tc.polls {
				t.Errorf("%d polls, want %d", ps.polls, tc.polls)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(progress, tc.progress) {
				t.Errorf("progress %q\n    want %q", progress, tc.progress)
			}
		})
	}
}

// TestPromGateCanceled: the verdict is pending with the last poll's
// reasons, and every poll before reported progress.
func TestPromGateCanceled(t *testing.T) {
	ps := &promServer{t: t, answer: []promAnswer{{200, empty}}}
	srv := httptest.NewServer(ps)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var progress []Verdict
	in := Input{Progress: func(v Verdict) {
		progress = append(progress, v)
		if len(progress) == 2 {
			cancel()
		}
	}}
	g := PromGate{URL: srv.URL, Query: "up", Op: "==", Value: 1, Interval: time.Millisecond, Within: time.Hour}
	v := g.Check(ctx, in)
	assertVerdict(t, v, Verdict{Gate: "prometheus", Pending: true, Reasons: []string{
		"not decided after 2 rounds: context canceled", "poll 2: up: no data"}})
	if len(progress) != 2 {
		t.Fatalf("progress %+v", progress)
	}
	for i, p := range progress {
		assertVerdict(t, p, Verdict{Gate: "prometheus", Pending: true, Reasons: []string{
			"poll " + string(rune('1'+i)) + ": up: no data"}})
	}
}
