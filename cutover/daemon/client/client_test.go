package client_test

import (
	"encoding/json"
	"testing"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
)

// TestRollbackWireForm: every target is sent explicitly; no field is left
// for the daemon to default.
func TestRollbackWireForm(t *testing.T) {
	for _, tc := range []struct {
		t    engine.RollbackTarget
		want string
	}{
		{engine.AllBatches(), `{"all":true,"operator":"alice"}`},
		{engine.OnlyBatch(0), `{"batch":0,"operator":"alice"}`},
		{engine.OnlyBatch(3), `{"batch":3,"operator":"alice"}`},
		{engine.BatchesFrom(0), `{"to":0,"operator":"alice"}`},
		{engine.BatchesFrom(2), `{"to":2,"operator":"alice"}`},
	} {
		req, err := client.NewRollbackRequest(tc.t, "alice")
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s: sent %s, want %s", tc.t, b, tc.want)
		}
	}
	// The zero target selects nothing: it is refused, and nothing is sent.
	if req, err := client.NewRollbackRequest(engine.RollbackTarget{}, "alice"); err == nil {
		t.Errorf("the zero target was sent as %+v", req)
	}
}

// TestRunWireForm: a run sends the files' names and contents (base64),
// never a path alone.
func TestRunWireForm(t *testing.T) {
	b, err := json.Marshal(client.RunRequest{Runbook: client.File{Name: "/ops/rb.yaml", Content: []byte("version: 1\n")},
		Inventory: client.File{Name: "/ops/inv.csv", Content: []byte{}}, Yes: true, Operator: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"runbook":{"name":"/ops/rb.yaml","content":"dmVyc2lvbjogMQo="},"inventory":{"name":"/ops/inv.csv","content":""},"yes":true,"operator":"alice"}`
	if string(b) != want {
		t.Errorf("sent %s\nwant %s", b, want)
	}
}
