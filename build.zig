// Builds the fully static shardid binary for x86_64-linux-musl with zig cc;
// `zig build test` builds and runs the C unit tests (tests/unit) the same way.
const std = @import("std");

const Heat = enum { hot, cold };

// Every src/*.c file, one line each. Cold files (start-up, configuration,
// Consul, logging, metrics) are optimised for size, hot ones (the request
// path, idtype.c's entity-name check included) for speed: the binary stays
// small without slowing IDs. build() stops when a src/*.c file is missing
// here, so a new file cannot be left out of the binary silently.
const sources = [_]struct { []const u8, Heat }{
    .{ "api.c", .hot },
    .{ "api_admin.c", .cold },
    .{ "api_ctx.c", .hot },
    .{ "api_ids.c", .hot },
    .{ "api_info.c", .cold },
    .{ "auth.c", .cold },
    .{ "buf.c", .hot },
    .{ "clock.c", .hot },
    .{ "config.c", .cold },
    .{ "conn.c", .hot },
    .{ "consul.c", .cold },
    .{ "consul_core.c", .cold },
    .{ "crc32c.c", .hot },
    .{ "dns.c", .cold },
    .{ "fmt.c", .cold },
    .{ "gate.c", .hot },
    .{ "http_client.c", .cold },
    .{ "http_lex.c", .hot },
    .{ "http_parse.c", .hot },
    .{ "http_resp.c", .hot },
    .{ "http_response.c", .cold },
    .{ "http_status.c", .hot },
    .{ "idtype.c", .hot },
    .{ "journal.c", .hot },
    .{ "jrec.c", .hot },
    .{ "json.c", .hot },
    .{ "json_writer.c", .hot },
    .{ "log.c", .cold },
    .{ "loop_epoll.c", .hot },
    .{ "loop_poll.c", .hot },
    .{ "main.c", .cold },
    .{ "metrics.c", .cold },
    .{ "procstat.c", .cold },
    .{ "reidentify.c", .cold },
    .{ "reshard.c", .cold },
    .{ "sort.c", .cold },
    .{ "resolve.c", .cold },
    .{ "route.c", .hot },
    .{ "seq.c", .hot },
    .{ "server.c", .hot },
    .{ "shard_kv.c", .cold },
    .{ "snowflake.c", .hot },
    .{ "store.c", .hot },
    .{ "store_kv.c", .cold },
    .{ "tsid.c", .hot },
    .{ "url.c", .cold },
    .{ "uuid.c", .hot },
};

pub fn build(b: *std.Build) void {
    checkSources(b);

    const target = b.standardTargetOptions(.{
        .default_target = .{ .cpu_arch = .x86_64, .os_tag = .linux, .abi = .musl },
    });
    // Release by default (plain `zig build` would mean Debug).
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "optimization mode") orelse .ReleaseFast;
    // Without -Dversion the C side's fallback (src/version.h) names the build.
    const version = b.option([]const u8, "version", "version string (default: src/version.h's)");
    // The git commit, "-dirty" appended for uncommitted changes (scripts/release).
    const commit = b.option([]const u8, "commit", "git commit the build is from (default: src/version.h's)");
    const test_hooks = b.option(bool, "test-hooks", "compile test-only hooks (never in releases)") orelse false;

    const base_flags = [_][]const u8{
        "-std=c11",
        "-D_GNU_SOURCE",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-fno-sanitize=undefined", // zig cc's default UBSan traps bloat the binary; ASan+UBSan builds run in make unit
        "-fstack-protector-strong",
        "-ffunction-sections",
        "-fdata-sections",
        // C needs no unwind tables (nothing throws through it): .eh_frame was
        // 14 KiB of a 210 KiB binary. The code itself is the same.
        "-fno-asynchronous-unwind-tables",
        "-fno-unwind-tables",
    };

    var flags = std.ArrayList([]const u8).init(b.allocator);
    flags.appendSlice(&base_flags) catch @panic("oom");
    if (version) |v| flags.append(b.fmt("-DSHARDID_VERSION=\"{s}\"", .{v})) catch @panic("oom");
    if (commit) |c| flags.append(b.fmt("-DSHARDID_COMMIT=\"{s}\"", .{c})) catch @panic("oom");
    if (test_hooks) flags.append("-DSHARDID_TEST_HOOKS=1") catch @panic("oom");

    const exe = b.addExecutable(.{
        .name = "shardid",
        .target = target,
        .optimize = optimize,
        .linkage = .static,
    });
    exe.root_module.strip = true;
    addSources(b, exe, flags.items, true);
    exe.link_gc_sections = true;
    b.installArtifact(exe);

    // Unit tests: each tests/unit/test_*.c against every src/*.c but main.c,
    // with the test hooks; test_loop.c again on the poll(2) backend. No
    // sanitizers here: `make unit` is the ASan+UBSan build of the same tests.
    const test_step = b.step("test", "build and run the C unit tests (tests/unit/test_*.c)");
    var test_flags = std.ArrayList([]const u8).init(b.allocator);
    test_flags.appendSlice(&base_flags) catch @panic("oom");
    test_flags.appendSlice(&.{ "-DSHARDID_VERSION=\"test\"", "-DSHARDID_TEST_HOOKS=1" }) catch @panic("oom");
    var poll_flags = std.ArrayList([]const u8).init(b.allocator);
    poll_flags.appendSlice(test_flags.items) catch @panic("oom");
    poll_flags.append("-DSHARDID_LOOP_POLL") catch @panic("oom");
    for (listDir(b, "tests/unit", "test_", ".c")) |file| {
        const name = file[0 .. file.len - 2];
        addUnitTest(b, test_step, target, optimize, name, file, test_flags.items);
        if (std.mem.eql(u8, name, "test_loop"))
            addUnitTest(b, test_step, target, optimize, "test_loop_poll", file, poll_flags.items);
    }
}

// Adds the table's files to c: hot ones in its root module, where the optimize
// mode decides (ReleaseFast: zig cc's -O2), cold ones in a module of their
// own built ReleaseSmall (-Os) when c is ReleaseFast; Debug, ReleaseSafe and
// ReleaseSmall builds compile every file in their own mode.
fn addSources(b: *std.Build, c: *std.Build.Step.Compile, flags: []const []const u8, with_main: bool) void {
    const root = c.root_module;
    root.link_libc = true;
    const cold = b.createModule(.{
        .target = root.resolved_target,
        .optimize = if (root.optimize == .ReleaseFast) .ReleaseSmall else root.optimize,
        .strip = root.strip,
        .link_libc = true,
    });
    var hot_files = std.ArrayList([]const u8).init(b.allocator);
    var cold_files = std.ArrayList([]const u8).init(b.allocator);
    for (sources) |s| {
        if (!with_main and std.mem.eql(u8, s[0], "main.c")) continue;
        (if (s[1] == .cold) &cold_files else &hot_files).append(s[0]) catch @panic("oom");
    }
    // Cold code also calls the buffer helpers instead of inlining them at
    // every one of its hundreds of appends (5 KiB; +14 instructions per
    // request, in metrics_request).
    var cold_flags = std.ArrayList([]const u8).init(b.allocator);
    cold_flags.appendSlice(flags) catch @panic("oom");
    if (root.optimize == .ReleaseFast) cold_flags.append("-fno-inline") catch @panic("oom");
    root.addCSourceFiles(.{ .root = b.path("src"), .files = hot_files.items, .flags = flags });
    cold.addCSourceFiles(.{ .root = b.path("src"), .files = cold_files.items, .flags = cold_flags.items });
    root.addImport("cold", cold);
}

fn addUnitTest(b: *std.Build, step: *std.Build.Step, target: std.Build.ResolvedTarget, optimize: std.builtin.OptimizeMode, name: []const u8, file: []const u8, flags: []const []const u8) void {
    const t = b.addExecutable(.{ .name = name, .target = target, .optimize = optimize, .linkage = .static });
    t.addCSourceFile(.{ .file = b.path(b.fmt("tests/unit/{s}", .{file})), .flags = flags });
    addSources(b, t, flags, false);
    t.root_module.addIncludePath(b.path("src"));
    t.root_module.addIncludePath(b.path("tests/unit"));
    step.dependOn(&b.addRunArtifact(t).step);
}

// The build stops unless the table above and src/*.c name the same files.
fn checkSources(b: *std.Build) void {
    var ok = true;
    for (listDir(b, "src", "", ".c")) |file| {
        for (sources) |s| {
            if (std.mem.eql(u8, s[0], file)) break;
        } else {
            std.debug.print("build.zig: src/{s} is not in the source table: add a line `.{{ \"{s}\", .hot }},` (or .cold) to `sources`\n", .{ file, file });
            ok = false;
        }
    }
    for (sources, 0..) |s, i| {
        b.build_root.handle.access(b.fmt("src/{s}", .{s[0]}), .{}) catch {
            std.debug.print("build.zig: `sources` lists src/{s}, which does not exist\n", .{s[0]});
            ok = false;
        };
        for (sources[0..i]) |t| {
            if (std.mem.eql(u8, s[0], t[0])) {
                std.debug.print("build.zig: `sources` lists src/{s} twice\n", .{s[0]});
                ok = false;
            }
        }
    }
    if (!ok) std.process.exit(1);
}

// The sorted names of the files PREFIX*SUFFIX in the build root's directory sub.
fn listDir(b: *std.Build, sub: []const u8, prefix: []const u8, suffix: []const u8) []const []const u8 {
    var dir = b.build_root.handle.openDir(sub, .{ .iterate = true }) catch |e|
        std.debug.panic("build.zig: cannot open {s}: {s}", .{ sub, @errorName(e) });
    defer dir.close();
    var names = std.ArrayList([]const u8).init(b.allocator);
    var it = dir.iterate();
    while (it.next() catch |e| std.debug.panic("build.zig: reading {s}: {s}", .{ sub, @errorName(e) })) |entry| {
        if (entry.kind == .file and std.mem.startsWith(u8, entry.name, prefix) and std.mem.endsWith(u8, entry.name, suffix))
            names.append(b.dupe(entry.name)) catch @panic("oom");
    }
    std.mem.sort([]const u8, names.items, {}, struct {
        fn lt(_: void, x: []const u8, y: []const u8) bool {
            return std.mem.lessThan(u8, x, y);
        }
    }.lt);
    return names.items;
}
