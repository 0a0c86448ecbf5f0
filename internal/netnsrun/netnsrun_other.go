//go:build !linux

// Package netnsrun runs a function inside a network namespace; only Linux
// has them.
package netnsrun

import "errors"

var errNotLinux = errors.New("network namespaces need Linux")

// Check reports whether the namespace name can be opened.
func Check(name string) error {
	if name == "" {
		return nil
	}
	return errNotLinux
}

// Run runs fn; a namespace other than "" is an error off Linux.
func Run(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	return errNotLinux
}
