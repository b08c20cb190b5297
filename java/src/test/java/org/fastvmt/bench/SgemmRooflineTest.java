package org.fastvmt.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.fastvmt.backend.Backend;
import org.fastvmt.backend.Backends;
import org.fastvmt.backend.Device;
import org.fastvmt.backend.OpenBlas;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class SgemmRooflineTest {

    @BeforeAll
    static void openBlasIsInstalled() {
        Assumptions.assumeTrue(OpenBlas.problem().isEmpty(), () -> "skipped: " + OpenBlas.problem().orElse(""));
    }

    @Test
    void theCpuRooflineIsOpenBlasAndConsistent() {
        try (Backend cpu = Backends.open(Device.CPU)) {
            SgemmRoofline roofline = SgemmRoofline.measure(cpu, 96, 3);
            assertEquals(96, roofline.size());
            assertTrue(roofline.library().startsWith("OpenBLAS"), roofline.library());
            assertTrue(roofline.msPerProduct() > 0 && roofline.gflops() > 0, roofline.toString());
            assertEquals(2.0 * 96 * 96 * 96 / (roofline.msPerProduct() * 1e6), roofline.gflops(), 1e-9 * roofline.gflops());
            assertEquals(50.0, roofline.percentOf(roofline.gflops() / 2), 1e-9);
            assertEquals("", roofline.note());
        }
    }

    @Test
    void emulatedCudaSaysItsRooflineIsTheCpus() {
        Assumptions.assumeTrue(Backends.available().contains(Device.CUDAEMU), "libfastvmt_cudaemu was not built");
        try (Backend emulated = Backends.open(Device.CUDAEMU)) {
            SgemmRoofline roofline = SgemmRoofline.measure(emulated, 64, 1);
            assertTrue(roofline.library().startsWith("OpenBLAS"), roofline.library());
            assertTrue(roofline.note().contains("no meaningful roofline"), roofline.note());
        }
    }
}
