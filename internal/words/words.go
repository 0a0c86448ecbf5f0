// Package words writes lists of choices and counted nouns into messages and
// help texts.
package words

import "strings"

// OrList writes "a", "a or b", "a, b or c".
func OrList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
