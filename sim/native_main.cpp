// Native driver of the generated array: load, run and read back layers with no Python (and no VPI)
// in the loop. Built by sim/native.py together with the Verilated model; the job and result file
// formats are documented there (one place). The handshake semantics are those of the cocotb
// testbench (sim/tb_accelerator.py): a stream word moves on a rising edge where valid and ready were
// both high before it; inputs change right after an edge; ``cycles`` counts the edges from the one
// that samples ``start`` to the one after which ``done`` is high.
//
// Built with --trace-vcd or --trace-fst (sim.verilator.TRACE_FORMATS), the driver takes a third
// argument, a waveform file: every eval is dumped, the clock rising at multiples of 10 ns and falling
// half-way (the period of the cocotb testbench, sim/tb_accelerator.py PERIOD_NS), so either harness's
// trace reads the same in a viewer.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Vsparse_pe_array.h"
#include "verilated.h"

#if VM_TRACE
#if VM_TRACE_FST
#include "verilated_fst_c.h"
using Trace = VerilatedFstC;
#else
#include "verilated_vcd_c.h"
using Trace = VerilatedVcdC;
#endif
#endif

// Verilator escapes a double underscore in a port name (Amaranth's "load__valid") as "___05F".

namespace {

using Words = std::vector<uint32_t>;  // one value as little-endian 32-bit words

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "native driver: %s\n", what.c_str());
    std::exit(2);
}

Words parse_hex(const std::string& text) {
    Words w((text.size() + 7) / 8, 0);
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[text.size() - 1 - i];
        uint32_t d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else fail("bad hex digit in '" + text + "'");
        w[i / 8] |= d << (4 * (i % 8));
    }
    return w;
}

// Port access for every width Verilator uses (8/16/32/64-bit integers and VlWide<N> arrays).
template <typename T>
void put(T& port, const Words& w) {
    uint64_t v = w.empty() ? 0 : w[0];
    if (w.size() > 1) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N>
void put(VlWide<N>& port, const Words& w) {
    for (size_t i = 0; i < N; ++i) port.at(i) = i < w.size() ? w[i] : 0;
}
template <typename T>
std::string hex(const T& port) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(port));
    return buf;
}
template <std::size_t N>
std::string hex(const VlWide<N>& port) {
    std::string out;
    char buf[12];
    for (size_t i = N; i-- > 0;) {
        std::snprintf(buf, sizeof buf, out.empty() ? "%x" : "%08x", port.at(i));
        if (!out.empty() || port.at(i) || i == 0) out += buf;
    }
    return out;
}

// splitmix64: the same stall pattern for the same seed on every platform and compiler
struct Rng {
    uint64_t s;
    double uniform() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * 0x1.0p-53;
    }
    bool chance(double p) { return p > 0 && uniform() < p; }
};

struct Layer {
    uint64_t n_out = 0, timeout = 0;
    double load_gap = 0, backpressure = 0;
    bool reseed = false;
    uint64_t seed = 0;
    Words cfg;
    std::vector<Words> words;
};

struct Result {
    bool hang = false;
    uint64_t cycles = 0;
    std::string perf;
    std::vector<std::string> outputs;
};

struct Driver {
    std::unique_ptr<Vsparse_pe_array> top;
    uint64_t edges = 0;
    double phase_s[3] = {0, 0, 0};      // load, compute, read back
    uint64_t phase_edges[3] = {0, 0, 0};

    explicit Driver(VerilatedContext* ctx) : top(new Vsparse_pe_array(ctx)) {}

#if VM_TRACE
    std::unique_ptr<Trace> trace;
    uint64_t last_dump = 0;

    void open_trace(const char* path) {
        trace.reset(new Trace);
        top->trace(trace.get(), 99);  // every level of the hierarchy
        trace->open(path);
        if (!trace->isOpen()) fail(std::string("cannot write the waveform file ") + path);
    }
    // A second settle between the same two edges (inputs changed again) goes 1 ns later: a trace
    // time never repeats, so no eval is lost.
    void dump(uint64_t t) {
        if (!trace) return;
        if (last_dump && t <= last_dump) t = last_dump + 1;
        trace->dump(t);
        last_dump = t;
    }
#else
    void dump(uint64_t) {}
#endif
    static constexpr uint64_t kPeriod = 10;  // trace time units (ns) per clock cycle

    void settle() { top->clk = 0; top->eval(); dump(kPeriod * edges + kPeriod / 2); }
    void edge() { top->clk = 1; top->eval(); ++edges; dump(kPeriod * edges); }
    void cycle() { settle(); edge(); }

    void reset() {
        top->rst = 1; top->load___05Fvalid = 0; top->o___05Fready = 0; top->start = 0;
        put(top->cfg, Words{});
        for (int i = 0; i < 3; ++i) cycle();
        top->rst = 0;
        cycle();
    }

    void load(const Layer& ly, Rng& rng) {
        size_t i = 0;
        while (i < ly.words.size()) {
            const bool idle = rng.chance(ly.load_gap);
            top->load___05Fvalid = !idle;
            if (!idle) put(top->load___05Fpayload, ly.words[i]);
            settle();
            const bool moved = !idle && top->load___05Fready;
            edge();
            if (moved) ++i;
        }
        top->load___05Fvalid = 0;
    }

    bool run(const Layer& ly, uint64_t& cycles) {
        put(top->cfg, ly.cfg);
        top->start = 1;
        cycle();
        top->start = 0;
        for (cycles = 1;; ++cycles) {
            cycle();
            if (top->done) return true;
            if (cycles >= ly.timeout) return false;
        }
    }

    void read(const Layer& ly, Rng& rng, std::vector<std::string>& out) {
        uint64_t quiet = 0;
        while (out.size() < ly.n_out && quiet < 1000) {
            const bool ready = !rng.chance(ly.backpressure);
            top->o___05Fready = ready;
            settle();
            const bool moved = ready && top->o___05Fvalid;
            if (moved) out.push_back(hex(top->o___05Fpayload));
            edge();
            quiet = moved ? 0 : quiet + 1;
        }
        top->o___05Fready = 0;
    }

    template <typename F>
    void timed(int phase, F&& f) {
        const auto t0 = std::chrono::steady_clock::now();
        const uint64_t e0 = edges;
        f();
        phase_s[phase] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        phase_edges[phase] += edges - e0;
    }

    Result one(const Layer& ly, Rng& rng) {
        Result r;
        if (ly.reseed) rng.s = ly.seed;
        timed(0, [&] { load(ly, rng); });
        bool finished = false;
        timed(1, [&] { finished = run(ly, r.cycles); });
        if (!finished) {
            r.hang = true;
            reset();
            return r;
        }
        timed(2, [&] { read(ly, rng, r.outputs); });
        settle();
        r.perf = hex(top->perf);
        return r;
    }
};

std::vector<Layer> read_job(const char* path, uint64_t& seed) {
    std::ifstream in(path);
    if (!in) fail(std::string("cannot open the job file ") + path);
    std::string magic, tok;
    in >> magic;
    if (magic != "sparse-pe-native-job-1") fail("not a native job file (first token '" + magic + "')");
    in >> tok >> seed;
    std::vector<Layer> layers;
    while (in >> tok) {
        if (tok != "layer") fail("expected 'layer', found '" + tok + "'");
        Layer ly;
        size_t n_words = 0;
        std::string reseed, cfg;
        in >> n_words >> ly.n_out >> ly.timeout >> ly.load_gap >> ly.backpressure >> reseed >> cfg;
        if (!in) fail("truncated layer header in the job file");
        if (reseed != "-") { ly.reseed = true; ly.seed = std::strtoull(reseed.c_str(), nullptr, 10); }
        ly.cfg = parse_hex(cfg);
        ly.words.reserve(n_words);
        for (size_t i = 0; i < n_words; ++i) {
            if (!(in >> tok)) fail("the job file ends inside a layer's load words");
            ly.words.push_back(parse_hex(tok));
        }
        layers.push_back(std::move(ly));
    }
    return layers;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) fail("usage: Vsparse_pe_array JOB RESULTS [WAVES.vcd|WAVES.fst]");
    uint64_t seed = 0;
    const std::vector<Layer> layers = read_job(argv[1], seed);
    auto ctx = std::make_unique<VerilatedContext>();
#if VM_TRACE
    ctx->traceEverOn(true);  // before the model is constructed, as Verilator's tracing examples do
#endif
    Driver d(ctx.get());
    if (argc == 4) {
#if VM_TRACE
        ctx->timeunit(-9);
        ctx->timeprecision(-9);
        d.open_trace(argv[3]);
#else
        fail("this driver was built without tracing; build it with trace= (sim.native.build_native)");
#endif
    }
    Rng rng{seed};
    std::vector<Result> results;
    results.reserve(layers.size());
    const auto t0 = std::chrono::steady_clock::now();
    d.reset();
    for (const Layer& ly : layers) results.push_back(d.one(ly, rng));
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    d.top->final();
#if VM_TRACE
    if (d.trace) d.trace->close();
#endif

    std::ofstream out(argv[2]);
    if (!out) fail(std::string("cannot write ") + argv[2]);
    out << "sparse-pe-native-results-1\n";
    out << "clocked " << d.edges << " seconds " << total_s << "\n";
    static const char* names[3] = {"load", "compute", "read"};
    for (int p = 0; p < 3; ++p) out << names[p] << " " << d.phase_edges[p] << " " << d.phase_s[p] << "\n";
    for (const Result& r : results) {
        out << "layer " << (r.hang ? "hang" : "done") << " " << r.cycles << " " << (r.perf.empty() ? "-" : r.perf)
            << " " << r.outputs.size() << "\n";
        for (const std::string& o : r.outputs) out << o << "\n";
    }
    return 0;
}
