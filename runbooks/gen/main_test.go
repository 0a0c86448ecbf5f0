package main

import (
	"bytes"
	"os"
	"testing"
)

// TestExamplesUpToDate fails when a checked-in example inventory is not
// what its preset generates: rerun `go generate ./runbooks/...`.
func TestExamplesUpToDate(t *testing.T) {
	for preset, file := range map[string]string{
		"helse-nord":    "../helse-nord/inventory.csv",
		"drain-upgrade": "../drain-upgrade/inventory.yaml",
		"dr-drill":      "../dr-drill/inventory.json",
	} {
		var got bytes.Buffer
		if err := run([]string{"-preset", preset}, &got); err != nil {
			t.Fatalf("%s: %v", preset, err)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s is stale: run go generate ./runbooks/...", file)
		}
	}
}

func TestDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	args := []string{"-vms", "300", "-seed", "7", "-v6", "30", "-multi", "30"}
	if err := run(args, &a); err != nil {
		t.Fatal(err)
	}
	if err := run(args, &b); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-vms", "300", "-seed", "8", "-v6", "30", "-multi", "30"}, &c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("same seed must give the same bytes, another seed others")
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-preset", "nope"},
		{"-tenants", "a=0"},
		{"-tiers", "1,2"},
		{"-start", "fd00::1"},
		{"-vms", "10", "-v6", "11"},
		{"-format", "xml"},
	} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
