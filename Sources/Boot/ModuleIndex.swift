/// `modules.dep` and `modules.builtin` of one kernel, and the load order for a list of module names.
///
/// `modules.dep` lines are `path: dependency dependency …` with paths relative to `/lib/modules/<release>/`;
/// depmod lists every module a module needs, directly or not, ordered so that loading the list from the right
/// works. Names compare as the kernel compares them: `dm-crypt` and `dm_crypt` are the same module.
struct ModuleIndex: Equatable, Sendable {
    /// What to do for one module, in load order.
    enum Step: Equatable, Sendable {
        /// Load the file at this path (relative to the modules directory).
        case load(name: String, path: String)
        /// Compiled into the kernel: nothing to load.
        case builtin(name: String)
        /// An optional module (`name?`) the kernel does not have.
        case absent(name: String)
    }

    /// Normalised name → path.
    private(set) var paths: [String: String] = [:]
    /// Path → dependency paths, as listed.
    private(set) var dependencies: [String: [String]] = [:]
    private(set) var builtin: Set<String> = []

    init(dependencyFile: String, builtinFile: String = "") throws(ModuleError) {
        for (number, line) in dependencyFile.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop(while: { $0 == " " })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                throw .malformedIndex(line: number + 1, text: String(line))
            }
            let path = String(trimmed[..<colon])
            let deps = trimmed[trimmed.index(after: colon)...].split(separator: " ").map(String.init)
            paths[Self.name(ofPath: path)] = path
            dependencies[path] = deps
        }
        for line in builtinFile.split(separator: "\n") where !line.isEmpty {
            builtin.insert(Self.name(ofPath: String(line)))
        }
    }

    /// `kernel/drivers/md/dm-crypt.ko.zst` → `dm_crypt`.
    static func name(ofPath path: String) -> String {
        var base = Substring(path.split(separator: "/").last ?? Substring(path))
        for suffix in [".xz", ".zst", ".gz"] where base.hasSuffix(suffix) { base = base.dropLast(suffix.count) }
        if base.hasSuffix(".ko") { base = base.dropLast(3) }
        return normalise(String(base))
    }

    /// The kernel's spelling of a module name: `-` becomes `_`.
    static func normalise(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }

    /// The steps that load `names` (in the given order), each module after everything it depends on and each
    /// module once. A name ending in `?` is optional: absent from the kernel is not an error.
    func plan(_ names: [String]) throws(ModuleError) -> [Step] {
        var steps: [Step] = []
        var done: Set<String> = []
        for requested in names {
            let optional = requested.hasSuffix("?")
            let name = Self.normalise(optional ? String(requested.dropLast()) : requested)
            if done.contains(name) { continue }
            if builtin.contains(name) {
                steps.append(.builtin(name: name))
                done.insert(name)
                continue
            }
            guard let path = paths[name] else {
                if optional {
                    steps.append(.absent(name: name))
                    done.insert(name)
                    continue
                }
                throw .unknownModule(name)
            }
            var visiting: [String] = []
            try visit(path: path, steps: &steps, done: &done, visiting: &visiting)
        }
        return steps
    }

    private func visit(
        path: String, steps: inout [Step], done: inout Set<String>, visiting: inout [String]
    ) throws(ModuleError) {
        let name = Self.name(ofPath: path)
        if done.contains(name) { return }
        guard !visiting.contains(name) else { throw .dependencyCycle(visiting + [name]) }
        guard let deps = dependencies[path] else { throw .missingDependency(module: visiting.last ?? name, path: path) }
        visiting.append(name)
        for dependency in deps.reversed() {
            let dependencyName = Self.name(ofPath: dependency)
            if builtin.contains(dependencyName) {
                if done.insert(dependencyName).inserted { steps.append(.builtin(name: dependencyName)) }
                continue
            }
            try visit(path: dependency, steps: &steps, done: &done, visiting: &visiting)
        }
        visiting.removeLast()
        steps.append(.load(name: name, path: path))
        done.insert(name)
    }
}
