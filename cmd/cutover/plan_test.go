package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPlanJSON(t *testing.T) {
	out, errOut, _, err := run(t, "plan", "-o", "json", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil || errOut != "" {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var plan struct {
		Digest  string `json:"digest"`
		Batches []struct {
			Index    int      `json:"index"`
			Name     string   `json:"name"`
			VMs      []string `json:"vms"`
			Prefixes []string `json:"prefixes"`
			Announce []struct {
				Prefix  string   `json:"prefix"`
				NextHop string   `json:"next_hop"`
				Peers   []string `json:"peers"`
				Attrs   struct {
					Communities []string `json:"communities"`
				} `json:"attrs"`
			} `json:"announce"`
			Withdraw []json.RawMessage `json:"withdraw"`
			NFT      struct {
				Add    []struct{ Set, Element string } `json:"add"`
				Remove []json.RawMessage               `json:"remove"`
			} `json:"nft"`
		} `json:"batches"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Digest) != 64 || len(plan.Batches) != 16 {
		t.Fatalf("digest %q, %d batches", plan.Digest, len(plan.Batches))
	}
	vms, prefixes := 0, map[string]bool{}
	for i, b := range plan.Batches {
		if b.Index != i || (i == 0) != (b.Name == "canary") {
			t.Errorf("batch %d: index %d name %q", i, b.Index, b.Name)
		}
		vms += len(b.VMs)
		if len(b.Announce) != len(b.Prefixes) || len(b.NFT.Add) != len(b.Prefixes) || b.Withdraw == nil || b.NFT.Remove == nil {
			t.Errorf("%s: %d prefixes, %d announced, %d nft elements", b.Name, len(b.Prefixes), len(b.Announce), len(b.NFT.Add))
		}
		for j, p := range b.Prefixes {
			prefixes[p] = true
			a := b.Announce[j]
			want4 := !strings.Contains(p, ":")
			if a.Prefix != p || (want4 && a.NextHop != "10.255.2.2") || (!want4 && a.NextHop != "fd00:255:2::2") ||
				len(a.Peers) != 1 || a.Peers[0] != "10.255.0.1" || a.Attrs.Communities[0] != "65100:2" {
				t.Fatalf("%s: announce %+v for %s", b.Name, a, p)
			}
			if e := b.NFT.Add[j]; e.Element != p {
				t.Fatalf("%s: nft element %+v for %s", b.Name, e, p)
			}
		}
	}
	if vms != 2000 || len(prefixes) != 2024 {
		t.Errorf("%d VMs, %d distinct prefixes", vms, len(prefixes))
	}
	again, _, _, _ := run(t, "plan", "-o", "json", "../../runbooks/helse-nord/runbook.yaml")
	if again != out {
		t.Error("two runs give different JSON")
	}
}

func TestPlanText(t *testing.T) {
	out, _, _, err := run(t, "plan", "--summary", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"totals     2000 VMs, 2024 prefixes (2004 IPv4, 20 IPv6), 6 tenants, 16 batches\n",
		"BATCH      VMS  PREFIXES  TIER3  TIER2  TIER1  finnmark  hnikt  hsyk  nlsh  sykehusapotek  unn\n",
		"canary      10        10     10      0      0         2      2     2     2              1    1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "announce to") {
		t.Error("--summary printed the details")
	}
	full, _, _, err := run(t, "plan", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil || !strings.Contains(full, "\n  10.64.0.58/32 via 10.255.2.2 community 65100:2 large-community 65100:2:1\n") ||
		!strings.Contains(full, "\n  moved_skm2_v6 fd00:64::") {
		t.Errorf("details lack routes or nft elements (%v)", err)
	}
}

func TestPlanInvalidRunbook(t *testing.T) {
	out, errOut, code, err := run(t, "plan", "-o", "json", "../../cutover/runbook/testdata/bad/runbook.yaml")
	if code != 2 || out != "" || !strings.Contains(errOut, "bgp.local_as: AS 0 is reserved") {
		t.Errorf("code %d (%v), stdout %q, stderr:\n%s", code, err, out, errOut)
	}
}
