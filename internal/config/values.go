package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// The flag.Value implementations below bind a setting to its Settings
// field. Set validates; its error says what is wanted, and Parse prefixes
// the flag or variable and the rejected text.

// stringValue is a string, optionally restricted to some choices.
type stringValue struct {
	p       *string
	choices []string // nil: anything
}

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v stringValue) Set(s string) error {
	if v.choices != nil && !contains(v.choices, s) {
		return fmt.Errorf("want %s", strings.Join(v.choices, " or "))
	}
	*v.p = s
	return nil
}

func contains(list []string, s string) bool {
	for _, c := range list {
		if c == s {
			return true
		}
	}
	return false
}

// durationValue is a positive duration, or also zero when zeroOK.
type durationValue struct {
	p      *time.Duration
	zeroOK bool
}

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || (d == 0 && !v.zeroOK) {
		if v.zeroOK {
			return errors.New("want a duration such as 30s or 30m, or 0 to disable")
		}
		return errors.New("want a positive duration such as 100ms or 10s")
	}
	*v.p = d
	return nil
}

// boolValue is true or false (strconv.ParseBool's spellings).
type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}

// IsBoolFlag lets --flag stand for --flag=true.
func (boolValue) IsBoolFlag() bool { return true }

// intValue is a positive integer; 0 means def (istiod: "0 or unset: the
// default").
type intValue struct {
	p   *int
	def int
}

func (v intValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a positive integer, or 0 for the default")
	}
	if n == 0 {
		n = v.def
	}
	*v.p = n
	return nil
}

// floatValue is a positive number; 0 means def.
type floatValue struct {
	p   *float64
	def float64
}

func (v floatValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("want a positive number, or 0 for the default")
	}
	if f == 0 {
		f = v.def
	}
	*v.p = f
	return nil
}

// levelValue is a slog level name.
type levelValue struct{ p *slog.Level }

func (v levelValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.ToLower(v.p.String())
}

func (v levelValue) Set(s string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	*v.p = l
	return nil
}
