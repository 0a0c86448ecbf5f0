// Package runbook reads and checks what a cutover is asked to do: the
// inventory of VMs and their addresses, and the runbook that says where
// they move and how. Every mistake in both files is reported at once, as
// runbook.ValidationErrors with file, line, field and value; warnings are
// returned beside.
//
//	Load(runbook.yaml) → *Runbook, *Inventory → plan.New
//
// Load and Parse read nothing but the two files: no network, no root.
package runbook
