//go:build linux

// Package netnsrun runs a function on an OS thread that has entered a
// network namespace, so that the sockets (and /proc/sys/net files) the
// function opens belong to that namespace for their whole life.
package netnsrun

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Open opens a network namespace by name (under /run/netns) or by path.
func Open(name string) (netns.NsHandle, error) {
	var h netns.NsHandle
	var err error
	if strings.ContainsRune(name, '/') {
		h, err = netns.GetFromPath(name)
	} else {
		h, err = netns.GetFromName(name)
	}
	if err != nil {
		return netns.None(), fmt.Errorf("open netns %q: %w", name, err)
	}
	return h, nil
}

// Check reports whether the namespace name can be opened.
func Check(name string) error {
	h, err := Open(name)
	if err != nil {
		return err
	}
	return h.Close()
}

// Run runs fn with its goroutine's OS thread in the network namespace
// name ("" runs fn as is).
//
// fn runs on a fresh goroutine locked to its thread. If switching back
// fails, the goroutine exits still locked, and the Go runtime then ends the
// thread instead of letting other goroutines run in the wrong namespace.
func Run(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := Open(name)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %q: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %q: %w", name, err))
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
