//go:build !linux

package health

import "fmt"

func checkNetns(name string) error {
	return fmt.Errorf("netns %q: network namespaces are only supported on linux", name)
}

func inNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	return checkNetns(name)
}
