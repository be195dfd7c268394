// pjdfstest lines that no 9P server can pass under the guest's own 9p
// client, Linux 6.1's v9fs: what they check never leaves the guest. Each is
// counted apart ("9p client" in the table), never as a pass and never as
// one of the gateway's failures, and only on a 9p mount (on tmpfs they are
// real). diod, the reference 9P server, fails exactly these lines in the same
// guest (npm run test:posix -- --diod --dirs utimensat).

export interface ClientLimit {
  /** DIR/NN.t */
  test: string;
  /** Test numbers in that file ("not ok N"). */
  numbers: number[];
  why: string;
}

export const V9FS_LIMITS: ClientLimit[] = [
  {
    test: "utimensat/08.t",
    numbers: [5, 6],
    why:
      "v9fs never sets the superblock's s_time_gran (fs/9p/vfs_super.c, v9fs_fill_super), so it keeps " +
      "alloc_super's 1 s, and notify_change (fs/attr.c) truncates the times utimensat sets to whole " +
      "seconds before v9fs sends its Tsetattr: the 100,000,000 ns the test sets are 0 on the wire",
  },
];
