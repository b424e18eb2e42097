package apiversion

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Version
		ok   bool
	}{
		{"2023-10-16", Version{Date: "2023-10-16"}, true},
		{"2025-03-31.basil", Version{Date: "2025-03-31", Release: "basil"}, true},
		{"2026-08-26.dahlia", Version{Date: "2026-08-26", Release: "dahlia"}, true},
		{"", Version{}, false},
		{"2023-10-1", Version{}, false},
		{"2023/10/16", Version{}, false},
		{"2025-03-31.", Version{}, false},
		{"2025-03-31.Basil", Version{}, false},
		{"2025-03-31.basil.x", Version{}, false},
		{"2025-03-31.preview", Version{Date: "2025-03-31", Release: "preview"}, true},
		{"abcd-ef-gh", Version{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := Parse(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	list := []string{"2023-10-16", "2025-03-31.basil"}
	tests := []struct {
		v    string
		want bool
	}{
		{"2023-10-16", true},
		{"2023-08-16", false},        // unnamed: only itself
		{"2024-04-10", false},        // unnamed: only itself
		{"2025-03-31.basil", true},   // listed
		{"2025-04-30.basil", true},   // a later monthly version of basil
		{"2025-02-24.acacia", false}, // an earlier release
		{"2025-09-30.clover", false}, // the next release
		{"2025-03-30.basil", false},  // before the listed date
		{"", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := Covers(list, tt.v); got != tt.want {
			t.Errorf("Covers(%v, %q) = %v, want %v", list, tt.v, got, tt.want)
		}
	}
}

func TestBuiltinsCover(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{Pinned, true},
		{Basil, true},
		{Dahlia, true},
		{"2024-06-20", true},        // between 2023-10-16 and acacia
		{"2024-09-30.acacia", true}, // between the tested ones
		{"2025-09-30.clover", true}, // between the tested ones
		{"2026-10-28.dahlia", true}, // a later monthly version of dahlia
		{"2027-02-24.elder", false}, // a release after dahlia
		{"2027-02-24", false},       // unnamed after dahlia: not a version Stripe writes
		{"2022-11-15", false},       // before stripe-go v76's
		{"", false},
		{"not-a-version", false},
	}
	for _, tt := range tests {
		if got := BuiltinsCover(tt.v); got != tt.want {
			t.Errorf("BuiltinsCover(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
	for _, v := range Tested() {
		if !BuiltinsCover(v) {
			t.Errorf("tested version %s is not covered", v)
		}
	}
	if !slices.IsSortedFunc(Tested(), func(a, b string) int {
		pa, _ := Parse(a)
		pb, _ := Parse(b)
		switch {
		case pa.Before(pb):
			return -1
		case pb.Before(pa):
			return 1
		}
		return 0
	}) {
		t.Errorf("Tested() = %v, want oldest first", Tested())
	}
}
