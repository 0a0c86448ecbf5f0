package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// settings returns cmd's settings: its flags, CUTOVER_* environment
// variables and the --config file, in that order of precedence (see
// readConfig).
func settings(cmd *cobra.Command) (*viper.Viper, error) {
	v, err := flagSettings(cmd)
	if err != nil {
		return nil, err
	}
	return v, readConfig(cmd, v)
}

// flagSettings returns cmd's settings from its flags and CUTOVER_*
// environment variables.
func flagSettings(cmd *cobra.Command) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix("CUTOVER")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("bind flags: %w", err)}
	}
	return v, nil
}

// readConfig adds the --config file, if one is given, to v. The file is
// read strictly: a key that is a flag of no command is bad input (exit 2),
// named with the file and the nearest valid key, so that a typo is never
// silently ignored. A key of another command is left to that command, so
// that one file serves every command (socket for the CLI, state-dir for
// serve).
func readConfig(cmd *cobra.Command, v *viper.Viper) error {
	f := v.GetString("config")
	if f == "" {
		return nil
	}
	fv := viper.New()
	fv.SetConfigFile(f)
	if err := fv.ReadInConfig(); err != nil {
		return usageErr(fmt.Errorf("read config %s: %w", f, err))
	}
	m := fv.AllSettings()
	if err := checkConfigKeys(cmd, f, m); err != nil {
		return err
	}
	if err := v.MergeConfigMap(m); err != nil {
		return usageErr(fmt.Errorf("read config %s: %w", f, err))
	}
	return nil
}

// configKeys returns the keys a config file may set for cmd: its flags,
// with the persistent ones, except help and config.
func configKeys(cmd *cobra.Command) []string {
	var keys []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && f.Name != "config" {
			keys = append(keys, f.Name)
		}
	})
	slices.Sort(keys)
	return keys
}

// checkConfigKeys returns an error (exit 2) for each key of the config
// file's settings m that no command takes.
func checkConfigKeys(cmd *cobra.Command, file string, m map[string]any) error {
	valid := configKeys(cmd)
	var unknown []string
	for k := range m {
		if !slices.Contains(valid, k) && len(commandsWithFlag(cmd.Root(), k)) == 0 {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	all := allConfigKeys(cmd.Root())
	slices.Sort(unknown)
	errs := make([]error, len(unknown))
	for i, k := range unknown {
		msg := fmt.Sprintf("config %s: unknown key %q for %s", file, k, cmd.CommandPath())
		near := nearestKey(k, valid)
		if near == "" {
			near = nearestKey(k, all)
		}
		if near != "" {
			msg += fmt.Sprintf(": did you mean %q?", near)
		} else {
			msg += " (its keys: " + strings.Join(valid, ", ") + ")"
		}
		errs[i] = errors.New(msg)
	}
	return usageErr(errors.Join(errs...))
}

// allConfigKeys returns the keys a config file may set for some command.
func allConfigKeys(root *cobra.Command) []string {
	var keys []string
	walk(root, func(c *cobra.Command) {
		for _, k := range configKeys(c) {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	})
	slices.Sort(keys)
	return keys
}

// nearestKey returns the key of valid nearest to k by edit distance, or ""
// when none is near enough to be what was meant.
func nearestKey(k string, valid []string) string {
	best, bestD := "", -1
	for _, v := range valid {
		if d := editDistance(k, v); bestD < 0 || d < bestD {
			best, bestD = v, d
		}
	}
	n := len([]rune(k))
	if bestD < 0 || !(bestD <= 2 && bestD < n || 3*bestD <= n) {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// characters ("outptu" is 1 from "output").
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	d := make([][]int, len(s)+1)
	for i := range d {
		d[i] = make([]int, len(t)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(s)][len(t)]
}

// commandsWithFlag lists the commands under root that declare a flag
// named name.
func commandsWithFlag(root *cobra.Command, name string) []string {
	var out []string
	walk(root, func(c *cobra.Command) {
		if name != "help" && name != "config" && c.Flags().Lookup(name) != nil {
			out = append(out, c.CommandPath())
		}
	})
	return out
}

// walk calls f for c and every command below it.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}
