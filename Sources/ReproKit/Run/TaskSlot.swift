import ReproSupport
import ReproStore

/// A task folder that one local run at a time reuses (`tmp/run-slot-N`), held by a lock for
/// the run. A run in a fresh folder creates five files and folders and deletes them again; on
/// ext4 without a journal each creation then scans past every inode deleted in the last 30 s,
/// so back-to-back misses slowed each other down. Runs that find every slot busy, and runs
/// killed mid-way, are no different from before: the next holder empties what is left.
final class TaskSlot {
    let dir: String
    private let lock: FileLock

    private init(dir: String, lock: FileLock) {
        self.dir = dir
        self.lock = lock
    }

    /// The first free slot of the store, emptied of what a killed run may have left; nil when
    /// `limit` runs already hold one (the caller makes a folder of its own).
    static func take(store: Store, limit: Int = 32) throws(StoreError) -> TaskSlot? {
        for i in 1...limit {
            let lock = try FileLock(path: store.locksDir + "/run-slot-\(i).lock")
            guard lock.tryLock() else { continue }
            let dir = store.tmpDir + "/run-slot-\(i)"
            FileIO.emptyTree(dir + "/out")  // stdout, stderr and config.json are truncated on reuse
            return TaskSlot(dir: dir, lock: lock)
        }
        return nil
    }
}
