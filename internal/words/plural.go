package words

import (
	"strconv"
	"strings"
)

// Plural writes n and the word, in the plural unless n is 1: "1 VM",
// "2 VMs", "2 prefixes", "3 batches", "2 retries". English's regular
// rules only: -es after s, x, ch and sh; -ies after a consonant and y.
func Plural(n int, word string) string {
	num := strconv.Itoa(n) + " "
	switch {
	case n == 1:
		return num + word
	case strings.HasSuffix(word, "s"), strings.HasSuffix(word, "x"),
		strings.HasSuffix(word, "ch"), strings.HasSuffix(word, "sh"):
		return num + word + "es"
	case len(word) >= 2 && word[len(word)-1] == 'y' && !strings.ContainsRune("aeiou", rune(word[len(word)-2])):
		return num + word[:len(word)-1] + "ies"
	}
	return num + word + "s"
}
