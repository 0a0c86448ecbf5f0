package plan

import "github.com/cutover/cutover/cutover/runbook"

// Parse is Load on contents already read, such as a snapshot of both files
// taken when a run started (see runbook.Parse), and plans the move.
func Parse(runbookName string, rb []byte, inventoryName string, inv []byte) (*Plan, []runbook.Warning, error) {
	r, i, warns, err := runbook.Parse(runbookName, rb, inventoryName, inv)
	if err != nil {
		return nil, warns, err
	}
	pl, err := New(r, i)
	return pl, warns, err
}

// Load loads a runbook and its inventory and plans the move: what
// `cutover validate` and `cutover plan` do. Errors are
// runbook.ValidationErrors.
func Load(path string) (*Plan, []runbook.Warning, error) {
	r, i, warns, err := runbook.Load(path)
	if err != nil {
		return nil, warns, err
	}
	pl, err := New(r, i)
	return pl, warns, err
}
