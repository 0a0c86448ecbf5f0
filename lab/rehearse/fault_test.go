package rehearse

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/cutover/cutover/lab"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the parsed fault
		wantErr string
	}{
		{in: "vm-down", want: "vm-down:10%@middle"},
		{in: "vm-down:25%@3", want: "vm-down:25%@3"},
		{in: "vm-down:5@batch-02", want: "vm-down:5@batch-02"},
		{in: "target-down:100%@2", want: "target-down:100%@2"},
		{in: "target-down:3", want: "target-down:3@middle"},
		{in: "target-down", want: "target-down:10%@middle"},
		{in: "slow-vm:3s@canary", want: "slow-vm:3s@canary"},
		{in: "slow-vm", want: "slow-vm:2s@middle"},
		{in: "http-5xx", want: "http-5xx:10%@middle"},
		{in: "http-5xx:50%@canary", want: "http-5xx:50%@canary"},
		{in: "http-5xx:3@2", want: "http-5xx:3@2"},
		{in: "daemon-kill@2", want: "daemon-kill@2"},
		{in: "bgp-reset", want: "bgp-reset@middle"},
		{in: "link-down@1", want: "link-down@1"},
		{in: "vm-down:0%", wantErr: `fault "vm-down:0%": share "0%": want 1% to 100%`},
		{in: "vm-down:many", wantErr: `fault "vm-down:many": "many": want a share such as 10% or a count of VMs`},
		{in: "target-down:0", wantErr: `fault "target-down:0": "0": want a share such as 10% or a count of VMs`},
		{in: "slow-vm:fast", wantErr: `fault "slow-vm:fast": delay "fast": want a duration such as 2s`},
		{in: "http-5xx:0", wantErr: `fault "http-5xx:0": "0": want a share such as 10% or a count of VMs`},
		{in: "http-5xx:101%", wantErr: `fault "http-5xx:101%": share "101%": want 1% to 100%`},
		{in: "daemon-kill:9", wantErr: `fault "daemon-kill:9": daemon-kill takes no argument`},
		{in: "meteor@2", wantErr: `fault "meteor@2": unknown kind "meteor" (want one of vm-down, target-down, slow-vm, http-5xx, bgp-reset, link-down, daemon-kill)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFault(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseFault(%q) error %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.String(); got != tt.want {
				t.Fatalf("ParseFault(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestFaultBatchIndex(t *testing.T) {
	names := []string{"canary", "batch-01", "batch-02", "batch-03", "batch-04"}
	tests := []struct {
		when    string
		want    int
		wantErr string
	}{
		{"middle", 2, ""},
		{"0", 0, ""},
		{"batch-03", 3, ""},
		{"5", 0, "fault vm-down:10%@5: batch 5: the plan has batches 0 to 4"},
		{"batch-99", 0, `fault vm-down:10%@batch-99: no batch named "batch-99"`},
	}
	for _, tt := range tests {
		f, _ := ParseFault("vm-down@" + tt.when)
		got, err := f.batchIndex(names)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s: error %v, want %q", tt.when, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %d, %v; want %d", tt.when, got, err, tt.want)
		}
	}
}

func TestFailsGate(t *testing.T) {
	slow, _ := ParseFault("slow-vm:500ms")
	if slow.failsGate(time.Second) {
		t.Error("a 500ms delay under a 1s probe timeout must not fail the gate")
	}
	if !slow.failsGate(300 * time.Millisecond) {
		t.Error("a 500ms delay over a 300ms probe timeout must fail the gate")
	}
	kill, _ := ParseFault("daemon-kill")
	if kill.failsGate(time.Second) {
		t.Error("daemon-kill must not fail a gate")
	}
	down, _ := ParseFault("target-down:1@2")
	if !down.failsReady() || !down.failsGate(time.Second) {
		t.Error("target-down must fail the readiness check, and the gates when the check is off")
	}
	http5xx, _ := ParseFault("http-5xx:2")
	if !http5xx.failsGate(time.Second) {
		t.Error("http-5xx must fail the gates: a 503 is unhealthy to an http probe and counts in the 5xx rate")
	}
	for _, s := range []string{"vm-down", "slow-vm:5s", "http-5xx", "link-down", "daemon-kill"} {
		if f, _ := ParseFault(s); f.failsReady() {
			t.Errorf("%s must not fail the readiness check: it lands after it", s)
		}
	}
}

// TestKinds checks the fault table: every kind complete, names unique,
// and the help texts the commands show.
func TestKinds(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds {
		if k.Name == "" || k.Help == "" || k.ByHand == "" || k.inject == nil || k.describe == nil {
			t.Errorf("kind %+v is incomplete", k)
		}
		if seen[k.Name] {
			t.Errorf("kind %s twice", k.Name)
		}
		seen[k.Name] = true
		if (k.Arg != "") != (k.parse != nil) || (k.parse != nil) != (k.format != nil) {
			t.Errorf("%s: argument synopsis %q without a parser and formatter, or the other way round", k.Name, k.Arg)
		}
	}
	const inject = `  vm-down[:10%|:N]       stop a share (or N) of the batch's VMs at the target once it moves
  target-down[:10%|:N]   as vm-down, before the batch starts: the readiness check must hold it
  slow-vm[:2s]           delay 10% of the batch's VMs at the target once it moves
  http-5xx[:10%|:N]      make a share of the batch's VMs answer HTTP 503 at the target once it moves
  bgp-reset              clear the edge's BGP sessions while the batch runs
  link-down              take the target site's link down while the batch runs
  daemon-kill            kill -9 the daemon in the batch, sample the edge FIB, restart, resume`
	if got := InjectHelp(); got != inject {
		t.Errorf("InjectHelp:\n%s\nwant\n%s", got, inject)
	}
	const byHand = `  vm-down   --addrs A,B [--site skm2] [--up]     stop (or, with --up, restart) VM responders
  target-down --addrs A,B [--site skm2] [--up]   as vm-down, before the VMs' batch starts: its
                                                 readiness check must hold it (or pause the run)
  slow-vm   --addrs A,B [--site skm2] --delay 2s delay VM responders (0 undoes it)
  http-5xx  --addrs A,B [--site skm2] [--up]     make VM responders answer HTTP 503 (--up: 200 again)
  bgp-reset                                      clear the edge's BGP sessions
  link-down [--site skm2] [--up]                 take a site's link at the edge down (or up)
  daemon-kill [--gap 3s]                         kill -9 the daemon a rehearsal left up (--keep), sample
                                                 the edge FIB while it is dead, start it again the same way;
                                                 the run then waits for 'cutover resume'`
	if got := ByHandHelp(); got != byHand {
		t.Errorf("ByHandHelp:\n%s\nwant\n%s", got, byHand)
	}
}

func TestLookupKind(t *testing.T) {
	k, err := LookupKind(SlowVM)
	if err != nil || k.Name != SlowVM || !k.NeedsVMs || !k.AfterReady || k.Early {
		t.Fatalf("LookupKind(slow-vm) = %+v, %v", k, err)
	}
	if td, err := LookupKind(TargetDown); err != nil || !td.NeedsVMs || !td.Early || !td.UndoWhenDecided {
		t.Fatalf("LookupKind(target-down) = %+v, %v", td, err)
	}
	_, err = LookupKind("meteor")
	var uk *UnknownKindError
	if !errors.As(err, &uk) || uk.Kind != "meteor" {
		t.Fatalf("LookupKind(meteor) error %v, want an *UnknownKindError", err)
	}
	if _, err := ParseFault("meteor@2"); !errors.As(err, &uk) {
		t.Errorf("ParseFault(meteor@2) error %v, want an *UnknownKindError in its chain", err)
	}
	if _, err := k.Inject(context.Background(), Injection{}); err == nil {
		t.Error("Inject without a lab succeeded")
	}
}

// TestHTTP5xxKind: http-5xx is put in place and taken away as vm-down is:
// on VMs, right after the readiness check, undoable.
func TestHTTP5xxKind(t *testing.T) {
	k, err := LookupKind(HTTP5xx)
	if err != nil {
		t.Fatal(err)
	}
	down, _ := LookupKind(VMDown)
	if k.NeedsVMs != down.NeedsVMs || k.AfterReady != down.AfterReady || k.Early != down.Early ||
		k.UndoWhenDecided != down.UndoWhenDecided || k.undoable != down.undoable || k.failsReady != down.failsReady || k.Arg != down.Arg {
		t.Errorf("http-5xx %+v is not placed as vm-down %+v", k, down)
	}
	in := Injection{Site: "skm2", VMs: []netip.Addr{netip.MustParseAddr("10.64.0.10"), netip.MustParseAddr("10.64.0.11")}}
	if got, want := k.Describe(in), "responders of 2 VM addresses at skm2 answer HTTP 503"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	in.Undo = true
	if got, want := k.Describe(in), "responders of 2 VM addresses at skm2 answer 200 again"; got != want {
		t.Errorf("Describe undone = %q, want %q", got, want)
	}
	if _, err := k.Inject(context.Background(), Injection{}); err == nil || err.Error() != "http-5xx: no lab" {
		t.Errorf("Inject without a lab: %v", err)
	}
	if _, err := k.Inject(context.Background(), Injection{Lab: &lab.Lab{}}); err == nil || err.Error() != "http-5xx: no VM addresses" {
		t.Errorf("Inject without VMs: %v", err)
	}
}
