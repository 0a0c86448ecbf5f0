package report_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/report"
)

func TestHTMLSelfContained(t *testing.T) {
	rep, _ := buildFailing(t)
	page := rep.HTML()
	lower := bytes.ToLower(page)
	// Nothing that would reach out of the page, and no script at all.
	for _, bad := range []string{"http://", "https://", "<script", "src=", "@import", "url(", "<link", "<iframe", "<object", "<embed"} {
		if bytes.Contains(lower, []byte(bad)) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	checkBalanced(t, page)

	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var svgs []*html.Node
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "svg" {
			svgs = append(svgs, n)
		}
	})
	if len(svgs) != 1 {
		t.Fatalf("%d svg elements, want 1", len(svgs))
	}
	bars := 0
	walk(svgs[0], func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "rect" && slices.Contains(strings.Fields(attr(n, "class")), "bar") {
			bars++
		}
	})
	if bars != 4 {
		t.Errorf("%d bar rects in the timeline, want 4", bars)
	}

	// The content a change board reads, as text of the page.
	text := textOf(doc)
	for _, want := range []string{
		"done — partial: 150 VMs (batch 2 b02-hsyk rolled back) still at skm1; cutover retry moves them. 350 of 500 VMs at skm2 (70%).",
		"Rehearsal PASS",
		runbookDigest, inventoryDigest, planDigest, "the digests above give it",
		"by alice", "bob", "cutover confirm after-canary go",
		"go/no-go at after-canary", "vm-d 10.0.0.4: tcp 80: connection refused",
		"rolled backbatch 2 b02-hsyk (150 VMs)", "held (not ready)none",
		"probe: FAIL — " + gateReason,
		"gate failed: probe: " + gateReason + " (+1 more)",
		"+ B>* 10.64.3.0/24 [20/0] via 10.255.2.2, eth2",
		"<script>alert('not run')</script>", // shown as text, not run
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
	rows := map[string]string{}
	walk(doc, func(n *html.Node) {
		if n.DataAtom == atom.Tr && strings.HasPrefix(attr(n, "id"), "batch-") {
			var cells []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.DataAtom == atom.Td {
					cells = append(cells, textOf(c))
				}
			}
			rows[attr(n, "id")] = strings.Join(cells, " ")
		}
	})
	for id, prefix := range map[string]string{
		"batch-0": "0 b00-canary 10 committed", "batch-1": "1 b01-unn 200 committed",
		"batch-2": "2 b02-hsyk 150 rolled-back", "batch-3": "3 b03-nlsh 140 committed",
	} {
		if !strings.HasPrefix(rows[id], prefix) {
			t.Errorf("row %s = %q, want it to start with %q", id, rows[id], prefix)
		}
	}
}

// TestHTMLUnderWay: a report of a run still under way, without the
// optional parts, is a whole page too.
func TestHTMLUnderWay(t *testing.T) {
	_, entries := buildFailing(t)
	// Cut the journal right after batch 2's failed verdict.
	cut := slices.IndexFunc(entries, func(e engine.JournalEntry) bool {
		return e.Type == "verdict" && strings.Contains(string(e.Data), `"batch":2`)
	})
	rep, err := report.Build(report.Input{Entries: entries[:cut+1]})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Banner != "under way (running); 360 of 500 VMs at skm2 (72%)" || rep.Tone != report.ToneBusy || !rep.Ended.IsZero() || rep.Until != entries[cut].Time {
		t.Errorf("banner %q (%s), ended %s, until %s", rep.Banner, rep.Tone, rep.Ended, rep.Until)
	}
	page := rep.HTML()
	checkBalanced(t, page)
	// The report of a run under way has the digests the journal gives.
	for _, want := range []string{"Last record", "gating", "pending", "probe</b>: <span class=\"bad\">FAIL</span> — " + gateReason,
		`<p class="outcome busy" id="outcome">`, `<tr id="plan-digest"><th>Plan digest</th><td><code class="digest">` + planDigest + "</code>",
		`<tr id="journal-digest"><th>Journal digest</th><td><code class="digest">` + rep.Journal.Digest + "</code>"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte(`id="rehearsal`)) || bytes.Contains(page, []byte(`id="snapshots"`)) {
		t.Error("page shows rehearsal or snapshots it was not given")
	}
	md := string(rep.Markdown())
	if !strings.Contains(md, "| 2 | b02-hsyk | 150 | gating |") || !strings.Contains(md, "| Last record |") {
		t.Errorf("markdown of a run under way:\n%s", md)
	}
}

// checkBalanced reads the page token by token: every element that is not
// void is closed, in order, and the page ends with nothing open.
func checkBalanced(t *testing.T, page []byte) {
	t.Helper()
	void := map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
		"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}
	z := html.NewTokenizer(bytes.NewReader(page))
	var stack []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("tokenize: %v", z.Err())
			}
			if len(stack) > 0 {
				t.Errorf("elements left open at the end: %v", stack)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !void[string(name)] {
				stack = append(stack, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text a reader sees (without style and title elements).
func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode && n.Parent != nil && n.Parent.Data != "style" && n.Parent.Data != "title" {
			b.WriteString(n.Data)
		}
	})
	return b.String()
}

const chromium = "/usr/bin/chromium"

// TestHTMLInBrowser renders the page in headless Chromium, with the
// network flags that keep it from dialing out, and checks the DOM it built
// and the screenshot it took.
func TestHTMLInBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("needs " + chromium + ": apt-get install chromium to render the report in a browser")
	}
	rep, _ := buildFailing(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, rep.HTML(), 0o644); err != nil {
		t.Fatal(err)
	}
	browse := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--window-size=1100,1800"}
		cmd := exec.CommandContext(ctx, chromium, append(append(base, args...), "file://"+page)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	dom := browse("--dump-dom")
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	text := textOf(doc)
	for _, want := range []string{"350 of 500 VMs at skm2", gateReason, "bob", runbookDigest} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	shot := filepath.Join(dir, "report.png")
	browse("--screenshot=" + shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 1000 {
		t.Errorf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	// Not a blank page: count distinct colors.
	colors := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colors) < 20 {
		t.Errorf("screenshot has %d colors: blank page?", len(colors))
	}
	if dst := os.Getenv("CUTOVER_REPORT_PNG"); dst != "" {
		data, _ := os.ReadFile(shot)
		_ = os.WriteFile(dst, data, 0o644)
	}
}
