// Package strict decodes YAML into Go structs strictly and collects every
// mistake at once, with file, line, field path and value: what loading a
// runbook or an inventory reports (FieldError, ValidationErrors, Warning).
package strict
