"""Every bootstrap of the sam build is stripped of its symbol table, and says its size.

The release profile's `strip = "symbols"` does not reach a package that has a profile
override of its own (`[profile.release.package]`) unless the override repeats it: the
bootstraps then kept 3 MB of symbols, which only this check saw.
"""
import pathlib
import struct
import sys


def section_names(path):
    data = pathlib.Path(path).read_bytes()
    if data[:5] != b"\x7fELF\x02":
        raise SystemExit(f"{path}: not a 64-bit ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    names = []
    for header in headers:
        start = names_at + header[0]
        names.append(data[start : data.index(b"\0", start)].decode())
    return names


def main(build_dir):
    bootstraps = sorted(pathlib.Path(build_dir).glob("*/bootstrap"))
    if not bootstraps:
        raise SystemExit(f"no bootstrap under {build_dir}")
    failed = 0
    for bootstrap in bootstraps:
        symbols = ".symtab" in section_names(bootstrap)
        failed += symbols
        size = bootstrap.stat().st_size
        print(f"{bootstrap.parent.name}: {size / 1e6:.2f} MB{', NOT STRIPPED' if symbols else ''}")
    print(f"stripped: {len(bootstraps) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(*sys.argv[1:])
