package nft

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a settable time for the fake's drains.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestFake(cfg Config) (*Fake, *clock) {
	c := &clock{t: time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)}
	f := NewFake(cfg)
	f.Now = c.now
	return f, c
}

func moved(site string, ps ...string) State {
	s := State{Sites: sites(), Moved: map[string][]netip.Prefix{}}
	for _, p := range ps {
		s.Moved[site] = append(s.Moved[site], mp(p))
	}
	return s
}

func elems(set string, ps ...string) []Element {
	var es []Element
	for _, p := range ps {
		es = append(es, Element{set, mp(p)})
	}
	return es
}

// TestFakeBatches walks a cutover: sites, two batches, a rollback; after
// each step it checks the changes, the fake kernel, the drains and the
// counters.
func TestFakeBatches(t *testing.T) {
	ctx := context.Background()
	f, clk := newTestFake(Config{DrainTimeout: time.Minute})

	res, err := f.Apply(ctx, State{Sites: sites()})
	if err != nil || res.Drain != nil || len(res.Changes.Add)+len(res.Changes.Remove) != 0 {
		t.Fatalf("sites: %+v, %v", res, err)
	}

	batch1 := moved("skm2", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32")
	res, err = f.Apply(ctx, batch1)
	if err != nil {
		t.Fatal(err)
	}
	// 10.0.0.1-10.0.0.3 as the fewest prefixes.
	if want := elems("moved_skm2_v4", "10.0.0.1/32", "10.0.0.2/31"); !slices.Equal(res.Changes.Add, want) {
		t.Errorf("batch 1 adds %v, want %v", res.Changes.Add, want)
	}
	if res.Drain == nil || res.Drain.ID != 1 || !res.Drain.Deadline.Equal(clk.t.Add(time.Minute)) {
		t.Errorf("batch 1 drain %+v, want id 1 ending in a minute", res.Drain)
	}

	clk.advance(30 * time.Second)
	batch2 := moved("skm2", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.5.0.0/24")
	res, err = f.Apply(ctx, batch2)
	if err != nil {
		t.Fatal(err)
	}
	if want := elems("moved_skm2_v4", "10.5.0.0/24"); !slices.Equal(res.Changes.Add, want) || len(res.Changes.Remove) != 0 {
		t.Errorf("batch 2 changes %+v, want %v added", res.Changes, want)
	}
	cs, err := f.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs["skm2"].Draining != 2 || !cs["skm2"].DrainDeadline.Equal(clk.t.Add(time.Minute)) || cs["skm1"].Draining != 0 {
		t.Errorf("counters %+v: want two drains of skm2, the last ending in a minute", cs)
	}

	clk.advance(31 * time.Second) // batch 1's drain is over
	cs, _ = f.Counters(ctx)
	if c := cs["skm2"]; c.Draining != 1 || len(c.Drains) != 2 || c.Drains[0].Reason != "timeout" || c.Drains[1].Done {
		t.Errorf("after batch 1's deadline: %+v, want drain 1 finished by timeout and drain 2 running", c)
	}

	// Rollback of batch 2 supersedes its drain: one drain, of the rollback.
	res, err = f.Apply(ctx, batch1)
	if err != nil {
		t.Fatal(err)
	}
	if want := elems("moved_skm2_v4", "10.5.0.0/24"); !slices.Equal(res.Changes.Remove, want) || len(res.Changes.Add) != 0 {
		t.Errorf("rollback changes %+v, want %v removed", res.Changes, want)
	}
	if cs, _ = f.Counters(ctx); cs["skm2"].Draining != 1 || cs["skm2"].Drains[1].Reason != "superseded" {
		t.Errorf("after the rollback: %+v, want one drain, drain 2 superseded", cs["skm2"])
	}
	if got := f.State(); fmt.Sprint(got.Moved) != "map[skm2:[10.0.0.1/32 10.0.0.2/31]]" {
		t.Errorf("fake kernel holds %v", got.Moved)
	}
	f.EndOldFlows()
	if cs, _ = f.Counters(ctx); cs["skm2"].Draining != 0 || cs["skm2"].Drains[2].Reason != "no-old-flows" {
		t.Errorf("after EndOldFlows: %+v", cs["skm2"])
	}

	// Moving between sites changes both sets.
	res, err = f.Apply(ctx, moved("skm1", "10.0.0.1/32", "10.0.0.2/31"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Changes.Add, elems("moved_skm1_v4", "10.0.0.1/32", "10.0.0.2/31")) ||
		!slices.Equal(res.Changes.Remove, elems("moved_skm2_v4", "10.0.0.1/32", "10.0.0.2/31")) {
		t.Errorf("skm2 → skm1 changes %+v", res.Changes)
	}
	if cs, _ = f.Counters(ctx); cs["skm1"].Draining != 1 || cs["skm2"].Draining != 1 {
		t.Errorf("skm2 → skm1 drains %+v, want one involving both", cs)
	}
	if f.Applies() != 5 {
		t.Errorf("Applies = %d, want 5", f.Applies())
	}
}

func TestFakeErrors(t *testing.T) {
	ctx := context.Background()
	f, _ := newTestFake(Config{})
	if _, err := f.Apply(ctx, moved("skm2", "10.0.0.1/24")); err == nil ||
		err.Error() != `apply: invalid dataplane state: site "skm2": prefix 10.0.0.1/24 has host bits set: did you mean 10.0.0.0/24?` {
		t.Errorf("invalid state: %v", err)
	}
	boom := errors.New("boom")
	f.FailNextApply(boom)
	if _, err := f.Apply(ctx, moved("skm2", "10.0.0.0/24")); !errors.Is(err, boom) {
		t.Errorf("failing Apply: %v, want boom", err)
	}
	if f.Applies() != 0 || len(f.State().Moved) != 0 {
		t.Errorf("failed Applies changed the fake: %d applies, %v", f.Applies(), f.State())
	}
	if _, err := f.Apply(ctx, moved("skm2", "10.0.0.0/24")); err != nil {
		t.Errorf("Apply after the failure: %v", err)
	}
	f.Close()
	if _, err := f.Apply(ctx, moved("skm2", "10.0.0.0/24")); err == nil || err.Error() != "apply: dataplane closed" {
		t.Errorf("Apply after Close: %v", err)
	}
	if _, err := f.Counters(ctx); err == nil {
		t.Error("Counters after Close: no error")
	}
}

func TestFakeDrift(t *testing.T) {
	ctx := context.Background()
	want := moved("skm2", "10.0.0.0/24")
	f, _ := newTestFake(Config{})

	d, err := f.Drift(ctx, want)
	if err != nil || d.String() != "table inet cutover: missing; missing element moved_skm2_v4 10.0.0.0/24" {
		t.Errorf("drift before the first Apply: %v, %v", d, err)
	}
	if _, err := f.Apply(ctx, want); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.Drift(ctx, want); !d.Empty() || d.String() != "no drift" {
		t.Errorf("drift after Apply: %v", d)
	}

	f.AddElement("moved_skm2_v4", mp("10.9.9.9/32"))
	f.RemoveElement("moved_skm2_v4", mp("10.0.0.128/25"))
	f.BreakObject(`chain steer: rule "cutover:new:skm2:v4" missing`)
	wantDrift := `chain steer: rule "cutover:new:skm2:v4" missing; ` +
		`missing element moved_skm2_v4 10.0.0.128/25; unexpected element moved_skm2_v4 10.9.9.9/32`
	if d, _ := f.Drift(ctx, want); d.String() != wantDrift {
		t.Errorf("drift after hand edits:\n%s\nwant:\n%s", d, wantDrift)
	}
	var de *DriftError
	_, err = f.Apply(ctx, want)
	if !errors.As(err, &de) || err.Error() != "apply: kernel drifted from the desired state (set Correct to fix): "+wantDrift {
		t.Errorf("Apply over drift: %v", err)
	}

	// A fake with Correct that applied nothing yet (a restart): the object
	// is corrected as drift, the elements are changes.
	f2, _ := newTestFake(Config{Correct: true})
	if _, err := f2.Apply(ctx, want); err != nil {
		t.Fatal(err)
	}
	f2.AddElement("moved_skm2_v4", mp("10.9.9.9/32"))
	f2.BreakObject("ip rule fwmark 0xc02 lookup 102 priority 9000: missing")
	res, err := f2.Apply(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Corrected); got != "[ip rule fwmark 0xc02 lookup 102 priority 9000: missing unexpected element moved_skm2_v4 10.9.9.9/32]" {
		t.Errorf("corrected %s", got)
	}
	if d, _ := f2.Drift(ctx, want); !d.Empty() {
		t.Errorf("drift after the correction: %v", d)
	}
}

func TestFakeCounters(t *testing.T) {
	ctx := context.Background()
	f, _ := newTestFake(Config{})
	if cs, _ := f.Counters(ctx); len(cs) != 0 {
		t.Errorf("counters before Apply: %v", cs)
	}
	if _, err := f.Apply(ctx, moved("skm2", "10.0.0.0/24")); err != nil {
		t.Fatal(err)
	}
	f.AddTraffic("skm2", Counter{Packets: 10, Bytes: 1000})
	f.AddTraffic("skm2", Counter{Packets: 5, Bytes: 500, OldPathPackets: 2, OldPathBytes: 120})
	cs, _ := f.Counters(ctx)
	if c := cs["skm2"]; c.Packets != 15 || c.Bytes != 1500 || c.OldPathPackets != 2 || c.OldPathBytes != 120 {
		t.Errorf("skm2 counters %+v", c)
	}
	if _, ok := cs["skm1"]; !ok {
		t.Error("no counters for skm1")
	}
}

// TestFakeConcurrent runs Apply, Drift and Counters at once (for -race).
func TestFakeConcurrent(t *testing.T) {
	ctx := context.Background()
	f := NewFake(Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				s := moved("skm2", fmt.Sprintf("10.%d.%d.0/24", i, j))
				if _, err := f.Apply(ctx, s); err != nil {
					var de *DriftError
					if !errors.As(err, &de) {
						t.Error(err)
					}
				}
				_, _ = f.Drift(ctx, s)
				_, _ = f.Counters(ctx)
			}
		}()
	}
	wg.Wait()
}

// TestFakeKeepsLastFinishedDrains: Counters reports the last 16 finished
// drains.
func TestFakeKeepsLastFinishedDrains(t *testing.T) {
	ctx := context.Background()
	f, clk := newTestFake(Config{DrainTimeout: time.Second})
	for i := range 20 {
		if _, err := f.Apply(ctx, moved("skm2", fmt.Sprintf("10.0.%d.0/24", i))); err != nil {
			t.Fatal(err)
		}
		clk.advance(2 * time.Second)
	}
	cs, err := f.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ds := cs["skm2"].Drains
	if len(ds) != KeptFinished || ds[0].ID != 5 || ds[len(ds)-1].ID != 20 || cs["skm2"].Draining != 0 {
		t.Errorf("%d drains from %d to %d, %d draining; want the 16 last, 5 to 20, none draining",
			len(ds), ds[0].ID, ds[len(ds)-1].ID, cs["skm2"].Draining)
	}
}
