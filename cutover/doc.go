// Package cutover is the domain of a cutover: the inventory of VMs and
// their addresses, the runbook that says where they move and how, the
// validation of both (every mistake reported at once, with file, line,
// field and value), and the plan that cuts the move into batches and says
// exactly which BGP routes and nftables set elements each batch changes.
//
// The data flows one way:
//
//	Load(runbook.yaml) → *Runbook, *Inventory → NewPlan → *Plan → Routes / Dataplane / Changes
//
// Load and NewPlan are pure apart from reading the two files: no network,
// no root. The engine that runs a plan against a BGP speaker and the
// dataplane lives in the same package.
package cutover
