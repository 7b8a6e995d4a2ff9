// Command h2spec runs the h2spec HTTP/2 conformance cases against a server over
// cleartext HTTP/2 with prior knowledge.
//
// It is h2c-mux's own front end to h2spec's library packages
// (github.com/summerwind/h2spec, MIT): the copy of h2spec's source under
// ../shared/tools/h2spec/src comes without its command, so interop/h2spec/run
// builds this file as github.com/summerwind/h2spec/cmd/h2spec in its place. It
// takes only the options h2c-mux's CI uses, spelled as h2spec documents them
// (each with its short and long name; one or two dashes both work):
//
//	h2spec -h 127.0.0.1 -p PORT -P /drain -o 2 -j report.xml [-S] [-v] [SECTION...]
//
// SECTION is a spec ID (generic, http2, hpack), optionally with a section and a
// case number: http2/6.3, http2/6.3/1. Exit status: 0 when every case passed, 1
// when one failed, 2 on a usage error or when the cases could not be run.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/summerwind/h2spec"
	"github.com/summerwind/h2spec/config"
)

// Set by the build (-ldflags "-X main.VERSION=... -X main.COMMIT=...").
var (
	VERSION = "unknown"
	COMMIT  = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("h2spec", flag.ContinueOnError)
	fs.SetOutput(stderr)

	var (
		host, path, junit string
		port, timeout     int
		maxHeaderLen      int
		strict, verbose   bool
		help, version     bool
	)
	str := func(p *string, short, long, def, usage string) {
		fs.StringVar(p, short, def, usage)
		fs.StringVar(p, long, def, usage)
	}
	num := func(p *int, short, long string, def int, usage string) {
		if short != "" {
			fs.IntVar(p, short, def, usage)
		}
		fs.IntVar(p, long, def, usage)
	}
	boolean := func(p *bool, short, long, usage string) {
		if short != "" {
			fs.BoolVar(p, short, false, usage)
		}
		fs.BoolVar(p, long, false, usage)
	}
	str(&host, "h", "host", "127.0.0.1", "target host")
	num(&port, "p", "port", 0, "target port (required)")
	str(&path, "P", "path", "/", "target path: must answer GET and POST with 200 and a non-empty body")
	num(&timeout, "o", "timeout", 2, "seconds to wait for the server's reply in each case")
	str(&junit, "j", "junit-report", "", "write a JUnit XML report to this file")
	num(&maxHeaderLen, "", "max-header-length", 4000, "length of each dummy header value the cases send")
	boolean(&strict, "S", "strict", "also run the strict cases (the specs' SHOULDs)")
	boolean(&verbose, "v", "verbose", "log every frame sent and received")
	boolean(&help, "", "help", "print this help and exit")
	boolean(&version, "", "version", "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: h2spec [flags] [SECTION...]\n\n"+
			"Runs h2spec's HTTP/2 conformance cases against a server over cleartext\n"+
			"HTTP/2 with prior knowledge. SECTION: generic, http2 or hpack, optionally\n"+
			"with a section and a case number (http2/6.3, http2/6.3/1); all when none.\n\n"+
			"Flags (one or two dashes):\n"+
			"  -h, -host HOST            target host (default 127.0.0.1)\n"+
			"  -p, -port PORT            target port (required)\n"+
			"  -P, -path PATH            target path (default /); it must answer GET and\n"+
			"                            POST with 200 and a non-empty body\n"+
			"  -o, -timeout SECONDS      wait for a reply in each case (default 2)\n"+
			"  -j, -junit-report FILE    write a JUnit XML report\n"+
			"  -S, -strict               also run the strict cases (the specs' SHOULDs)\n"+
			"  -v, -verbose              log every frame\n"+
			"      -max-header-length N  dummy header value length (default 4000)\n"+
			"      -version              print the version\n"+
			"      -help                 print this help\n")
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if help {
		fs.Usage()
		return 0
	}
	if version {
		fmt.Printf("h2spec %s (commit %s), h2c-mux's front end\n", VERSION, COMMIT)
		return 0
	}
	if port < 1 || port > 65535 {
		fmt.Fprintf(stderr, "h2spec: -p PORT is required (1 to 65535), got %d\n", port)
		return 2
	}
	if timeout < 1 {
		fmt.Fprintf(stderr, "h2spec: -o must be at least 1 second, got %d\n", timeout)
		return 2
	}

	c := &config.Config{
		Host:         host,
		Port:         port,
		Path:         path,
		Timeout:      time.Duration(timeout) * time.Second,
		MaxHeaderLen: maxHeaderLen,
		JUnitReport:  junit,
		Strict:       strict,
		Verbose:      verbose,
		// The cases to run; h2spec turns these into its private target map.
		Sections: fs.Args(),
	}
	ok, err := h2spec.Run(c)
	if err != nil {
		fmt.Fprintf(stderr, "h2spec: %v\n", err)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}
