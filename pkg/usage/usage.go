// Package usage answers the arguments of stripeq's commands. They take
// none, every setting being an environment variable; -h, -help and --help
// print the command's usage, and any other argument is an error, so that
// `worker --help` never starts a worker. Internal to this module: no
// compatibility promise.
package usage

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrHelp is what Check returns once it printed the usage: the command
// ends at once, with exit status 0.
var ErrHelp = flag.ErrHelp

// Check reads the arguments args (os.Args[1:]) of the command name. With
// none it returns nil. With -h, -help or --help it writes text, the
// command's usage, to w and returns ErrHelp. Any other argument returns an
// error that names it.
func Check(name string, args []string, text string, w io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == flag.ErrHelp:
		io.WriteString(w, strings.TrimSpace(text)+"\n")
		return ErrHelp
	case err != nil:
		return fmt.Errorf("%v: %s takes no arguments but -h and --help; its settings are environment variables", err, name)
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q: %s takes no arguments but -h and --help; its settings are environment variables", fs.Arg(0), name)
	}
	return nil
}
