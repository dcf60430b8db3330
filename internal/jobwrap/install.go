package jobwrap

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// InstallSelf copies the running executable (meshd) to dest, mode 0755,
// through a temporary file in dest's directory renamed into place, so a
// half-written binary is never left at dest.
func InstallSelf(dest string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding meshd's own binary: %w", err)
	}
	return copyExecutable(self, dest)
}

// copyExecutable copies src to dest, mode 0755.
func copyExecutable(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("installing meshd: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".meshd-*")
	if err != nil {
		return fmt.Errorf("installing meshd at %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("installing meshd at %s: %w", dest, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("installing meshd at %s: %w", dest, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("installing meshd at %s: %w", dest, err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("installing meshd at %s: %w", dest, err)
	}
	return nil
}
