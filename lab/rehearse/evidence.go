package rehearse

import (
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
)

// EvidenceFile is the name of the copy of a step's record in its report
// directory.
const EvidenceFile = "evidence.json"

// stepRecord is what a step that ran to its end leaves for its evidence
// record.
type stepRecord struct {
	o     Options // the step's: its runbook, faults and report directory
	pl    *plan.Plan
	began time.Time
	res   *Result
	// in is what its report was built from; nil when the journal could
	// not be read (the record then holds no report).
	in *ReportInput
}

// record is the evidence of one step: which bytes were rehearsed, how
// the run ended, with which faults and edges, and its report. A report
// that cannot be built leaves the record without one and is a problem of
// the step (not of the run the record tells about).
func (s *stepRecord) record(host string, edges []string) *evidence.Record {
	res := s.res
	rec := &evidence.Record{Version: evidence.Version, RehearsalRecord: report.RehearsalRecord{
		Runbook: s.pl.Runbook.Name, File: s.o.Runbook,
		RunbookDigest: s.pl.Runbook.Digest, InventoryDigest: s.pl.Inventory.Digest,
		Rehearsed: s.began.UTC(), Took: res.Took, Green: res.OK, Outcome: res.FinalOutcome()},
		Host: host, Edges: edges, Problems: slices.Clone(res.Problems)}
	for _, f := range s.o.Faults {
		rec.Faults = append(rec.Faults, f.String())
	}
	if s.in != nil {
		in := *s.in
		in.Result, in.Took = res, res.Took
		rep, err := buildReport(in)
		if err != nil {
			res.Problems = append(res.Problems, "build the report for the rehearsal's record: "+err.Error())
		}
		rec.Report = rep
	}
	return rec
}

// writeRecords writes each finished step's record into the evidence store
// and, beside its report, as evidence.json. A record that cannot be
// written is a problem of its step, but leaves the run's verdict (OK) as
// the run decided it: the rehearsal did prove what it proved.
func (r *rehearsal) writeRecords(steps []*stepRecord) {
	if len(steps) == 0 {
		return
	}
	host, _ := os.Hostname() // the record's Host is informative: "" when unknown
	var edges []string
	if r.l != nil {
		for _, e := range r.l.Topology().Edges {
			edges = append(edges, e.FlavorOf())
		}
	}
	dir := r.o.EvidenceDir
	if dir == "" {
		dir = evidence.DefaultDir
	}
	for _, s := range steps {
		rec := s.record(host, edges)
		file, err := evidence.Store{Dir: dir}.Write(rec)
		if err != nil {
			s.res.Problems = append(s.res.Problems, "write the rehearsal's record: "+err.Error())
		} else {
			s.res.Evidence = file
		}
		rd := s.res.ReportDir
		if rd == "" {
			rd = s.o.ReportDir
		}
		if rd == "" {
			continue
		}
		file = filepath.Join(rd, EvidenceFile)
		if err := os.MkdirAll(rd, 0o755); err != nil {
			s.res.Problems = append(s.res.Problems, "write the rehearsal's record beside its report: "+err.Error())
			continue
		}
		if err := evidence.WriteFile(file, rec); err != nil {
			s.res.Problems = append(s.res.Problems, "write the rehearsal's record beside its report: "+err.Error())
			continue
		}
		s.res.Reports = append(s.res.Reports, file)
	}
}
