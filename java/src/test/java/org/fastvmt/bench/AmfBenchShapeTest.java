package org.fastvmt.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.fastvmt.motion.AmfParams;
import org.junit.jupiter.api.Test;

class AmfBenchShapeTest {

    @Test
    void wanIsTheIssuesDefault() {
        AmfBenchShape wan = AmfBenchShape.wan();
        assertEquals(List.of(21, 30, 52, 1536), List.of(wan.frames(), wan.height(), wan.width(), wan.channels()));
        assertEquals(4, wan.sf());
        assertEquals(new AmfParams(12, 1f, 3, 4, 21), wan.params());
        assertEquals(441, wan.fullPairs().count());
        assertEquals(21 * 4 - (1 + 2 + 3), wan.windowPairs().count());
    }

    @Test
    void parseReadsFxHxWxC() {
        assertEquals(AmfBenchShape.wan(), AmfBenchShape.parse("21x30x52x1536"));
        assertEquals(AmfBenchShape.of(9, 30, 52, 240), AmfBenchShape.parse(" 9X30x52x240 "));
        AmfBenchShape changed = AmfBenchShape.parse("9x30x52x240").withSf(2).withWindow(7);
        assertEquals(new AmfBenchShape(9, 30, 52, 240, 2, AmfParams.defaults(12).withWindow(7)), changed);
    }

    @Test
    void defaultHeadsAreWansWhenTheyDivideTheChannels() {
        assertEquals(12, AmfBenchShape.defaultHeads(1536));
        assertEquals(8, AmfBenchShape.defaultHeads(64));
        assertEquals(1, AmfBenchShape.defaultHeads(13));
        assertEquals(8, AmfBenchShape.parse("4x8x12x64").params().heads());
    }

    @Test
    void badShapesAreRejectedWithTheReason() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> AmfBenchShape.parse("21x30x52"))
                .getMessage().contains("FxHxWxC"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> AmfBenchShape.parse("21x30x52xC"))
                .getMessage().contains("FxHxWxC"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> new AmfBenchShape(21, 30, 52, 100, 4, AmfParams.defaults(12))).getMessage()
                .contains("divisible by heads"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> AmfBenchShape.of(21, 2, 52, 1536))
                .getMessage().contains("tile"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> AmfBenchShape.of(0, 30, 52, 1536))
                .getMessage().contains("frames"));
    }
}
