package usage

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		help    bool
		wantErr string
	}{
		{nil, false, ""},
		{[]string{"-h"}, true, ""},
		{[]string{"-help"}, true, ""},
		{[]string{"--help"}, true, ""},
		{[]string{"--help", "x"}, true, ""},
		{[]string{"serve"}, false, `unexpected argument "serve"`},
		{[]string{"-port", "8080"}, false, "flag provided but not defined: -port"},
		{[]string{"--"}, false, ""},
	} {
		var out bytes.Buffer
		err := Check("worker", tt.args, "Usage: worker\n", &out)
		switch {
		case tt.help && (!errors.Is(err, ErrHelp) || out.String() != "Usage: worker\n"):
			t.Errorf("%q: %v, printed %q; want the usage and ErrHelp", tt.args, err, out.String())
		case !tt.help && tt.wantErr == "" && (err != nil || out.Len() > 0):
			t.Errorf("%q: %v, printed %q; want nothing", tt.args, err, out.String())
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "worker takes no arguments")):
			t.Errorf("%q: %v, want an error naming %s", tt.args, err, tt.wantErr)
		}
	}
}
