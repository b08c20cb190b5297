package org.fastvmt.io;

import org.bytedeco.ffmpeg.global.avutil;

/**
 * FFmpeg's own log goes straight to the process's standard error. The readers and writers
 * here report failures through exceptions that carry FFmpeg's error, so its log is limited to
 * fatal errors (a file that is not a video would otherwise be announced twice).
 */
final class FfmpegLogging {

    private FfmpegLogging() {
    }

    static void fatalOnly() {
        avutil.av_log_set_level(avutil.AV_LOG_FATAL);
    }
}
