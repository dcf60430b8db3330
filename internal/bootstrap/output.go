package bootstrap

import (
	"fmt"
	"os"
)

// Permissions of the --output file.
const (
	// publicMode is a bootstrap without secrets.
	publicMode os.FileMode = 0o644
	// secretMode is a bootstrap with --tls: it holds the token.
	secretMode os.FileMode = 0o600
)

// OutputMode is the permission WriteOutput gives the --output file: 0600
// with --tls, whose bootstrap holds the service-account token, else 0644.
func (o *Options) OutputMode() os.FileMode {
	if o.TLS {
		return secretMode
	}
	return publicMode
}

// WriteOutput writes out, o's generated bootstrap, to the file o.Output
// (which must not be "" or "-", standard output). Without --tls it is
// os.WriteFile with mode 0644. With --tls a new file is created 0600 and an
// existing regular file is truncated and set to 0600 before the token is
// written, so the token is never in a file others may open.
func WriteOutput(o *Options, out []byte) error {
	if !o.TLS {
		if err := os.WriteFile(o.Output, out, publicMode); err != nil {
			return fmt.Errorf("writing bootstrap: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(o.Output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, secretMode)
	if err != nil {
		return fmt.Errorf("writing bootstrap: %w", err)
	}
	if err := writeSecret(f, out); err != nil {
		f.Close()
		return fmt.Errorf("writing bootstrap %s: %w", o.Output, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing bootstrap: %w", err)
	}
	return nil
}

// writeSecret restricts f to its owner, when it is a regular file (not a
// terminal or a pipe such as /dev/stdout), then writes out to it.
func writeSecret(f *os.File, out []byte) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Mode().IsRegular() && info.Mode().Perm() != secretMode {
		if err := f.Chmod(secretMode); err != nil {
			return fmt.Errorf("restricting it to its owner (mode 0600): %w", err)
		}
	}
	_, err = f.Write(out)
	return err
}
