package update

import (
	"crypto/ed25519"
	"debug/elf"
	"errors"
	"runtime"

	"switchyard/devices"
)

// verifySignature checks the job's signature, by the update key, over the
// 32 raw bytes of its SHA-256 digest. The digest is the job's; the bytes
// were checked against it as they were downloaded.
func verifySignature(key ed25519.PublicKey, job devices.UpdateCommand) error {
	if !ed25519.Verify(key, job.Digest(), job.SignatureBytes()) {
		return failure(devices.UpdateErrSignature, "not signed by the update key")
	}
	return nil
}

// elfArch is what an ELF executable for a GOARCH says in its header.
type elfArch struct {
	machine elf.Machine
	class   elf.Class
}

var elfArchs = map[string]elfArch{
	"amd64":   {elf.EM_X86_64, elf.ELFCLASS64},
	"arm64":   {elf.EM_AARCH64, elf.ELFCLASS64},
	"arm":     {elf.EM_ARM, elf.ELFCLASS32},
	"386":     {elf.EM_386, elf.ELFCLASS32},
	"riscv64": {elf.EM_RISCV, elf.ELFCLASS64},
	"ppc64le": {elf.EM_PPC64, elf.ELFCLASS64},
	"loong64": {elf.EM_LOONGARCH, elf.ELFCLASS64},
	"s390x":   {elf.EM_S390, elf.ELFCLASS64},
	"mips":    {elf.EM_MIPS, elf.ELFCLASS32},
	"mipsle":  {elf.EM_MIPS, elf.ELFCLASS32},
	"mips64":  {elf.EM_MIPS, elf.ELFCLASS64},
}

// checkExecutable checks that the file at path is an ELF executable for
// this machine (GOARCH's machine and class). A job names no platform, so
// this is how a build for another board is refused: "unsupported
// platform".
func checkExecutable(path string) error {
	return checkExecutableFor(path, runtime.GOARCH)
}

func checkExecutableFor(path, goarch string) error {
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return failure(devices.UpdateErrPlatform, "not an ELF executable")
		}
		return failure(devices.UpdateErrPlatform, "read ELF header: %v", err)
	}
	defer f.Close()
	want, ok := elfArchs[goarch]
	switch {
	case !ok:
		return failure(devices.UpdateErrPlatform, "no ELF check for %s", goarch)
	case f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN:
		return failure(devices.UpdateErrPlatform, "an ELF %s, not an executable", f.Type)
	case f.Machine != want.machine || f.Class != want.class:
		return failure(devices.UpdateErrPlatform, "an executable for %s (%s), this board is linux/%s", f.Machine, f.Class, goarch)
	}
	return nil
}
