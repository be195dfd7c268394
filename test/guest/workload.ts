// The developer's workload the guest tests and the mount-option measure
// (bench/mount-options.ts) run: a source tree as a tarball, and the shell
// functions that untar, edit, move, copy, delete, chmod and touch it (work)
// and describe what it left (manifest).

import { execFileSync } from "node:child_process";
import { chmodSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";

export /**
 * A source tree of 1,200 files: nested directories, symlinks, a hard link,
 * executables. `only` keeps just those file numbers in each module (the
 * ones the workload names, and a few): the same tree, smaller.
 */
function makeTarball(dir: string, name = "tree.tar", only?: ReadonlySet<number>): string {
  const src = join(dir, name.replace(/\.tar$/, ""));
  let n = 0;
  for (let a = 0; a < 6; a++) {
    for (let b = 0; b < 10; b++) {
      const d = join(src, `pkg${a}`, `mod${b}`);
      mkdirSync(d, { recursive: true });
      for (let f = 0; f < 20; f++) {
        if (only && !only.has(f)) {
          n++;
          continue;
        }
        const p = join(d, `file${f}.txt`);
        // Sizes from 0 to ~40 KiB, text so that sed has something to edit.
        const size = (n * 7919) % 40000;
        writeFileSync(p, `header ${n}\n` + randomBytes(size).toString("base64").slice(0, size) + "\n");
        if (f % 7 === 0) chmodSync(p, 0o755);
        n++;
      }
    }
  }
  symlinkSync("mod1/file1.txt", join(src, "pkg0", "link-rel"));
  symlinkSync("/etc/hostname", join(src, "pkg0", "link-abs"));
  symlinkSync("mod2", join(src, "pkg1", "link-dir"));
  linkSync(join(src, "pkg2", "mod0", "file0.txt"), join(src, "pkg2", "hardlink.txt"));
  const tar = join(dir, name);
  execFileSync("tar", ["-C", src, "-cf", tar, "."]);
  return tar;
}

/** The files of each module small.tar keeps: the ones the workload names, and a few. */
export const SMALL = new Set([0, 1, 3, 5, 19]);

export const WORKLOAD_FUNCTIONS = `
work() {
  set -e
  cd "$1"
  tar -xf "/files/\${TREE:-tree.tar}"
  sed -i 's/header/HEADER/' pkg0/mod0/file0.txt pkg1/mod3/file5.txt pkg5/mod9/file19.txt
  mv pkg3 pkg3-moved
  cp -a pkg4/mod1 pkg4/mod1-copy
  cp -a pkg2 pkg2-copy
  rm -r pkg5/mod8
  chmod 600 pkg1/mod1/file1.txt
  chmod 711 pkg4/mod2
  touch -d "2021-02-03 04:05:06" pkg0/mod5/file3.txt pkg3-moved/mod0/file0.txt
  echo appended >> pkg0/mod0/file1.txt
  ln -s ../pkg0 pkg4/up-link
  cd /
}

# Names, types, sizes (not of directories), modes, link counts of files,
# symlink targets, md5 of every file, and the mtimes set explicitly.
manifest() {
  cd "$1"
  find . | sort | while read -r f; do
    t=$(stat -c %F "$f")
    case "$t" in
      directory) echo "D $f $(stat -c %a "$f")" ;;
      "symbolic link") echo "L $f -> $(readlink "$f")" ;;
      *) echo "F $f $(stat -c '%s %a %h' "$f") $(md5sum < "$f" | cut -d' ' -f1)" ;;
    esac
  done
  stat -c 'T %n %Y' pkg0/mod5/file3.txt pkg3-moved/mod0/file0.txt
  cd /
}

`;
