package runbook

import "github.com/cutover/cutover/cutover/runbook/strict"

// FieldError is one mistake in a runbook or an inventory.
type FieldError = strict.FieldError

// ValidationErrors is every mistake found in a runbook and its inventory,
// in file order and then line order.
type ValidationErrors = strict.ValidationErrors

// Warning is something worth a look that does not stop the run.
type Warning = strict.Warning

// problems collects mistakes and warnings while loading.
type problems = strict.Problems

// positions maps a field path to the line of its key.
type positions = strict.Positions
