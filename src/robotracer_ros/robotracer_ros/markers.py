"""RViz markers of a trace (what the perception node publishes on ``markers_topic``)."""

from __future__ import annotations

from typing import Any

from robotracer_ros.annotate import point_colours


def trace_markers(trace: Any, scale: float) -> Any:
    """RViz markers of a SpatialTrace: a line strip, numbered spheres (start green, end red).

    Args:
        trace: ``robotracer_msgs/SpatialTrace``.
        scale: sphere diameter, metres.

    Returns:
        ``visualization_msgs/MarkerArray`` (a DELETEALL first, so old points vanish).
    """
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    cols = [
        ColorRGBA(r=c[0] / 255.0, g=c[1] / 255.0, b=c[2] / 255.0, a=1.0)
        for c in point_colours(len(trace.points))
    ]
    out = MarkerArray()
    clear = Marker()
    clear.header = trace.header
    clear.ns = 'robotracer_trace'
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    line = Marker()
    line.header = trace.header
    line.ns, line.id, line.type, line.action = 'robotracer_trace', 0, Marker.LINE_STRIP, 0
    line.pose.orientation.w = 1.0
    line.scale.x = scale * 0.4
    line.points = [Point(x=p.x, y=p.y, z=p.z) for p in trace.points]
    line.colors = cols
    line.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    out.markers.append(line)
    for i, (p, c) in enumerate(zip(trace.points, cols, strict=True)):
        s = Marker()
        s.header = trace.header
        s.ns, s.id, s.type, s.action = 'robotracer_trace', 1 + i, Marker.SPHERE, 0
        s.pose.position = Point(x=p.x, y=p.y, z=p.z)
        s.pose.orientation.w = 1.0
        s.scale.x = s.scale.y = s.scale.z = scale
        s.color = c
        out.markers.append(s)
        t = Marker()
        t.header = trace.header
        t.ns, t.id, t.type, t.action = (
            'robotracer_trace_labels',
            1 + i,
            Marker.TEXT_VIEW_FACING,
            0,
        )
        t.pose.position = Point(x=p.x, y=p.y, z=p.z + scale * 1.5)
        t.pose.orientation.w = 1.0
        t.scale.z = scale * 1.5
        t.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        t.text = str(i + 1)
        out.markers.append(t)
    return out
