"""A tiny BPMN 2.0 writer for the MLC processes: semantic XML plus BPMNDI on a grid.

Development aid only: the committed ``bpmn/*.bpmn`` files are the source of truth and nothing
imports this at runtime. Elements sit on a grid of columns and rows (fractions allowed); flows
are routed orthogonally by a few helpers, so the layout opens cleanly in Camunda Modeler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

COL_WIDTH = 150
ROW_HEIGHT = 130
X0 = 180
Y0 = 300

SIZES = {
    "event": (36, 36),
    "gateway": (50, 50),
    "task": (100, 80),
}

NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
    'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
    'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:modeler="http://camunda.org/schema/modeler/1.0"'
)

ERROR_VARS = 'camunda:errorCodeVariable="MLC_ERROR_CODE" camunda:errorMessageVariable="MLC_ERROR_MESSAGE"'


def cx(col: float) -> float:
    return X0 + col * COL_WIDTH


def cy(row: float) -> float:
    return Y0 + row * ROW_HEIGHT


def _timer(id: str, *, duration: str | None, cycle: str | None, date: str | None) -> str:
    """A timer event definition; exactly one of duration, cycle (ISO repeat or cron) and date."""
    (kind, value), = [(k, v) for k, v in (("timeDuration", duration), ("timeCycle", cycle), ("timeDate", date)) if v]
    return (f'<bpmn:timerEventDefinition id="{id}_timer"><bpmn:{kind} xsi:type="bpmn:tFormalExpression">'
            f"{escape(value)}</bpmn:{kind}></bpmn:timerEventDefinition>")


@dataclass
class Node:
    id: str
    tag: str  # bpmn element name without prefix
    name: str
    shape: str  # event / gateway / task
    x: float  # centre
    y: float
    attrs: dict[str, str] = field(default_factory=dict)
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    extra_ext: str = ""  # more extensionElements content
    body: str = ""  # event definitions etc., after incoming/outgoing
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)
    default: str | None = None
    label: str = "bottom"  # where an event/gateway label goes
    parent: str | None = None  # event sub-process id
    attached_to: str | None = None
    documentation: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return SIZES[self.shape]

    def bounds(self) -> tuple[float, float, float, float]:
        w, h = self.size
        return (self.x - w / 2, self.y - h / 2, w, h)

    def anchor(self, side: str) -> tuple[float, float]:
        w, h = self.size
        return {
            "left": (self.x - w / 2, self.y),
            "right": (self.x + w / 2, self.y),
            "top": (self.x, self.y - h / 2),
            "bottom": (self.x, self.y + h / 2),
        }[side]


@dataclass
class Flow:
    id: str
    source: str
    target: str
    name: str = ""
    condition: str | None = None
    listeners: list[str] = field(default_factory=list)  # take-listener expressions
    waypoints: list[tuple[float, float]] = field(default_factory=list)
    parent: str | None = None


@dataclass
class SubProcess:
    id: str
    name: str
    x: float
    y: float
    w: float
    h: float
    documentation: str = ""


class Process:
    """One executable process and its diagram."""

    def __init__(self, key: str, name: str, documentation: str, definitions_id: str) -> None:
        self.key = key
        self.name = name
        self.documentation = documentation
        self.definitions_id = definitions_id
        self.nodes: dict[str, Node] = {}
        self.flows: list[Flow] = []
        self.subprocesses: list[SubProcess] = []
        self.globals: dict[str, str] = {}  # id -> xml of signal/message/error

    # ---- elements ---------------------------------------------------------------
    def _add(self, node: Node) -> Node:
        assert node.id not in self.nodes, node.id
        self.nodes[node.id] = node
        return node

    def signal_start(self, id: str, name: str, signal: str, col: float, row: float, **kw) -> Node:
        sid = self._signal(signal)
        return self._add(Node(id, "startEvent", name, "event", cx(col), cy(row),
                              body=f'<bpmn:signalEventDefinition id="{id}_signal" signalRef="{sid}" />', **kw))

    def error_start(self, id: str, name: str, col: float, row: float, parent: str, **kw) -> Node:
        """Catch-all error start event of an event sub-process."""
        return self._add(Node(id, "startEvent", name, "event", cx(col), cy(row), parent=parent,
                              body=f'<bpmn:errorEventDefinition id="{id}_error" {ERROR_VARS} />', **kw))

    def end(self, id: str, name: str, col: float, row: float, **kw) -> Node:
        return self._add(Node(id, "endEvent", name, "event", cx(col), cy(row), **kw))

    def external(self, id: str, name: str, topic: str, col: float, row: float, **kw) -> Node:
        attrs = {"camunda:type": "external", "camunda:topic": topic}
        attrs.update(kw.pop("attrs", {}))
        return self._add(Node(id, "serviceTask", name, "task", cx(col), cy(row), attrs=attrs, **kw))

    def rule(self, id: str, name: str, col: float, row: float, attrs: dict[str, str], **kw) -> Node:
        return self._add(Node(id, "businessRuleTask", name, "task", cx(col), cy(row), attrs=attrs, **kw))

    def user(self, id: str, name: str, col: float, row: float, attrs: dict[str, str], **kw) -> Node:
        return self._add(Node(id, "userTask", name, "task", cx(col), cy(row), attrs=attrs, **kw))

    def gateway(self, id: str, name: str, col: float, row: float, **kw) -> Node:
        return self._add(Node(id, "exclusiveGateway", name, "gateway", cx(col), cy(row), **kw))

    def message_catch(self, id: str, name: str, message: str, col: float, row: float, **kw) -> Node:
        mid = self._message(message)
        return self._add(Node(id, "intermediateCatchEvent", name, "event", cx(col), cy(row),
                              body=f'<bpmn:messageEventDefinition id="{id}_message" messageRef="{mid}" />', **kw))

    def start(self, id: str, name: str, col: float, row: float, **kw) -> Node:
        """None start event (the process is started by key or by a call activity)."""
        return self._add(Node(id, "startEvent", name, "event", cx(col), cy(row), **kw))

    def message_start(self, id: str, name: str, message: str, col: float, row: float, **kw) -> Node:
        mid = self._message(message)
        return self._add(Node(id, "startEvent", name, "event", cx(col), cy(row),
                              body=f'<bpmn:messageEventDefinition id="{id}_message" messageRef="{mid}" />', **kw))

    def signal_throw(self, id: str, name: str, signal: str, col: float, row: float,
                     variables: list[str] | None = None, **kw) -> Node:
        """Intermediate signal throw event passing ``variables`` (all when None) to what it starts."""
        sid = self._signal(signal)
        ins = ('<camunda:in variables="all" />' if variables is None
               else "".join(f'<camunda:in source="{v}" target="{v}" />' for v in variables))
        body = (f'<bpmn:signalEventDefinition id="{id}_signal" signalRef="{sid}">'
                f"<bpmn:extensionElements>{ins}</bpmn:extensionElements></bpmn:signalEventDefinition>")
        return self._add(Node(id, "intermediateThrowEvent", name, "event", cx(col), cy(row), body=body, **kw))

    def timer_catch(self, id: str, name: str, col: float, row: float, *, duration: str | None = None,
                    cycle: str | None = None, date: str | None = None, **kw) -> Node:
        return self._add(Node(id, "intermediateCatchEvent", name, "event", cx(col), cy(row),
                              body=_timer(id, duration=duration, cycle=cycle, date=date), **kw))

    def boundary_timer(self, id: str, name: str, host: str, dx: float, side: str = "bottom", *,
                       interrupting: bool = True, duration: str | None = None, cycle: str | None = None,
                       date: str | None = None, **kw) -> Node:
        h = self.nodes[host]
        hx, hy = h.anchor(side)
        attrs = {} if interrupting else {"cancelActivity": "false"}
        attrs.update(kw.pop("attrs", {}))
        return self._add(Node(id, "boundaryEvent", name, "event", hx + dx, hy, attached_to=host, attrs=attrs,
                              body=_timer(id, duration=duration, cycle=cycle, date=date), **kw))

    def boundary_message(self, id: str, name: str, host: str, message: str, dx: float, side: str = "top",
                         *, interrupting: bool = True, **kw) -> Node:
        mid = self._message(message)
        h = self.nodes[host]
        hx, hy = h.anchor(side)
        attrs = {} if interrupting else {"cancelActivity": "false"}
        return self._add(Node(id, "boundaryEvent", name, "event", hx + dx, hy, attached_to=host, attrs=attrs,
                              body=f'<bpmn:messageEventDefinition id="{id}_message" messageRef="{mid}" />', **kw))

    def receive(self, id: str, name: str, message: str, col: float, row: float, **kw) -> Node:
        """Receive task waiting for ``message``."""
        mid = self._message(message)
        return self._add(Node(id, "receiveTask", name, "task", cx(col), cy(row), attrs={"messageRef": mid}, **kw))

    def call(self, id: str, name: str, called_element: str, col: float, row: float, *,
             ins: list[str] | None = None, outs: list[str] | None = None, business_key: bool = True, **kw) -> Node:
        """Call activity; ``called_element`` may be an expression (``${...}``). ``ins``/``outs``
        name the variables passed each way (all when None)."""
        attrs = {"calledElement": called_element}
        attrs.update(kw.pop("attrs", {}))
        mapping = ['<camunda:in businessKey="#{execution.processBusinessKey}" />'] if business_key else []
        mapping += (['<camunda:in variables="all" />'] if ins is None
                    else [f'<camunda:in source="{v}" target="{v}" />' for v in ins])
        mapping += (['<camunda:out variables="all" />'] if outs is None
                    else [f'<camunda:out source="{v}" target="{v}" />' for v in outs])
        extra = "\n".join(mapping + ([kw.pop("extra_ext")] if "extra_ext" in kw else []))
        return self._add(Node(id, "callActivity", name, "task", cx(col), cy(row), attrs=attrs, extra_ext=extra, **kw))

    def parallel(self, id: str, name: str, col: float, row: float, **kw) -> Node:
        return self._add(Node(id, "parallelGateway", name, "gateway", cx(col), cy(row), **kw))

    def event_gateway(self, id: str, name: str, col: float, row: float, **kw) -> Node:
        return self._add(Node(id, "eventBasedGateway", name, "gateway", cx(col), cy(row), **kw))

    def _message(self, message: str) -> str:
        mid = "message_" + message.replace("mlc.", "").replace("-", "_").replace(".", "_")
        self.globals[mid] = f'<bpmn:message id="{mid}" name={quoteattr(message)} />'
        return mid

    def _signal(self, signal: str) -> str:
        sid = "signal_" + signal.replace("mlc.", "").replace("-", "_").replace(".", "_")
        self.globals[sid] = f'<bpmn:signal id="{sid}" name={quoteattr(signal)} />'
        return sid

    def boundary_error(self, id: str, name: str, host: str, code: str | None, dx: float, side: str = "bottom", **kw) -> Node:
        """Error boundary event on ``host``; ``code`` None catches every BPMN error."""
        h = self.nodes[host]
        hx, hy = h.anchor(side)
        ref = ""
        if code:
            eid = "error_" + code.lower().removeprefix("mlc_")
            self.globals[eid] = f'<bpmn:error id="{eid}" name="{code}" errorCode="{code}" />'
            ref = f' errorRef="{eid}"'
        node = Node(id, "boundaryEvent", name, "event", hx + dx, hy, attached_to=host,
                    body=f'<bpmn:errorEventDefinition id="{id}_error"{ref} {ERROR_VARS} />', **kw)
        return self._add(node)

    def event_subprocess(self, id: str, name: str, col0: float, row0: float, col1: float, row1: float,
                         documentation: str = "") -> SubProcess:
        """Box from the centre of (col0,row0) minus padding to (col1,row1) plus padding."""
        x = cx(col0) - 70
        y = cy(row0) - 80
        sp = SubProcess(id, name, x, y, cx(col1) + 70 - x, cy(row1) + 70 - y, documentation)
        self.subprocesses.append(sp)
        return sp

    # ---- flows -------------------------------------------------------------------
    def flow(self, id: str, source: str, target: str, name: str = "", condition: str | None = None,
             default: bool = False, listeners: list[str] | None = None,
             route: list[tuple[float, float]] | None = None, exit: str | None = None, enter: str | None = None) -> Flow:
        s, t = self.nodes[source], self.nodes[target]
        waypoints = route if route is not None else self._auto_route(s, t, exit, enter)
        f = Flow(id, source, target, name, condition, listeners or [], waypoints, parent=s.parent)
        self.flows.append(f)
        s.outgoing.append(id)
        t.incoming.append(id)
        if default:
            s.default = id
        return f

    def lane(self, source: str, target: str, y: float, exit: str, enter: str) -> list[tuple[float, float]]:
        """Route leaving ``source`` vertically, running along ``y``, entering ``target`` vertically or from the side."""
        s, t = self.nodes[source], self.nodes[target]
        a = s.anchor(exit)
        b = t.anchor(enter)
        if enter in ("top", "bottom"):
            return [a, (a[0], y), (b[0], y), b]
        # enter from the side: run along y to just before the target, then to its centre line
        return [a, (a[0], y), (b[0] - 30 if enter == "left" else b[0] + 30, y),
                (b[0] - 30 if enter == "left" else b[0] + 30, b[1]), b]

    def _auto_route(self, s: Node, t: Node, exit: str | None, enter: str | None) -> list[tuple[float, float]]:
        if abs(s.y - t.y) < 1 and exit is None and enter is None:
            if t.x >= s.x:
                return [s.anchor("right"), t.anchor("left")]
            return [s.anchor("left"), t.anchor("right")]
        down = t.y > s.y
        if s.shape == "gateway" or s.tag == "boundaryEvent" or exit in ("top", "bottom"):
            # leave vertically, arrive horizontally
            ex = exit or ("bottom" if down else "top")
            en = enter or ("left" if t.x >= s.x else "right")
            a, b = s.anchor(ex), t.anchor(en)
            if en in ("top", "bottom"):
                return [a, b] if abs(a[0] - b[0]) < 1 else [a, (a[0], (a[1] + b[1]) / 2), (b[0], (a[1] + b[1]) / 2), b]
            return [a, (a[0], b[1]), b]
        # leave horizontally, arrive vertically
        ex = exit or ("right" if t.x >= s.x else "left")
        en = enter or ("top" if down else "bottom")
        a, b = s.anchor(ex), t.anchor(en)
        if en in ("left", "right"):
            mid = (a[0] + b[0]) / 2
            return [a, (mid, a[1]), (mid, b[1]), b]
        return [a, (b[0], a[1]), b]

    # ---- output ------------------------------------------------------------------
    def to_xml(self) -> str:
        out: list[str] = []
        w = out.append
        w('<?xml version="1.0" encoding="UTF-8"?>')
        w(f'<bpmn:definitions {NS} id="{self.definitions_id}" targetNamespace="http://modelops-mlc/bpmn" '
          'exporter="modelops-mlc bpmn/tools" exporterVersion="1" '
          'modeler:executionPlatform="Camunda Platform" modeler:executionPlatformVersion="7.24.0">')
        w(f'  <bpmn:process id="{self.key}" name={quoteattr(self.name)} isExecutable="true" '
          'camunda:historyTimeToLive="P30D">')
        if self.documentation:
            w(f"    <bpmn:documentation>{escape(self.documentation)}</bpmn:documentation>")
        for n in self.nodes.values():
            if n.parent is None:
                out.extend(self._node_xml(n, "    "))
        for f in self.flows:
            if f.parent is None:
                out.extend(self._flow_xml(f, "    "))
        for sp in self.subprocesses:
            w(f'    <bpmn:subProcess id="{sp.id}" name={quoteattr(sp.name)} triggeredByEvent="true">')
            if sp.documentation:
                w(f"      <bpmn:documentation>{escape(sp.documentation)}</bpmn:documentation>")
            for n in self.nodes.values():
                if n.parent == sp.id:
                    out.extend(self._node_xml(n, "      "))
            for f in self.flows:
                if f.parent == sp.id:
                    out.extend(self._flow_xml(f, "      "))
            w("    </bpmn:subProcess>")
        w("  </bpmn:process>")
        for g in sorted(self.globals):
            w("  " + self.globals[g])
        out.extend(self._di_xml())
        w("</bpmn:definitions>")
        return "\n".join(out) + "\n"

    def _node_xml(self, n: Node, ind: str) -> list[str]:
        attrs = f'id="{n.id}"'
        if n.name:
            attrs += f" name={quoteattr(n.name)}"
        if n.attached_to:
            attrs += f' attachedToRef="{n.attached_to}"'
        for k, v in n.attrs.items():
            attrs += f" {k}={quoteattr(v)}"
        if n.default:
            attrs += f' default="{n.default}"'
        lines = [f"{ind}<bpmn:{n.tag} {attrs}>"]
        if n.documentation:
            lines.append(f"{ind}  <bpmn:documentation>{escape(n.documentation)}</bpmn:documentation>")
        ext = []
        if n.extra_ext:
            ext.append(n.extra_ext)
        if n.inputs or n.outputs:
            io = ["<camunda:inputOutput>"]
            io += [f"  <camunda:inputParameter name={quoteattr(k)}>{escape(v)}</camunda:inputParameter>" if v
                   else f"  <camunda:inputParameter name={quoteattr(k)} />" for k, v in n.inputs]
            io += [f"  <camunda:outputParameter name={quoteattr(k)}>{escape(v)}</camunda:outputParameter>"
                   for k, v in n.outputs]
            io.append("</camunda:inputOutput>")
            ext.append("\n".join(io))
        if ext:
            lines.append(f"{ind}  <bpmn:extensionElements>")
            for block in ext:
                lines.extend(f"{ind}    {line}" for line in block.split("\n"))
            lines.append(f"{ind}  </bpmn:extensionElements>")
        lines += [f"{ind}  <bpmn:incoming>{i}</bpmn:incoming>" for i in n.incoming]
        lines += [f"{ind}  <bpmn:outgoing>{o}</bpmn:outgoing>" for o in n.outgoing]
        if n.body:
            lines.append(f"{ind}  {n.body}")
        lines.append(f"{ind}</bpmn:{n.tag}>")
        return lines

    def _flow_xml(self, f: Flow, ind: str) -> list[str]:
        attrs = f'id="{f.id}"'
        if f.name:
            attrs += f" name={quoteattr(f.name)}"
        attrs += f' sourceRef="{f.source}" targetRef="{f.target}"'
        if not f.condition and not f.listeners:
            return [f"{ind}<bpmn:sequenceFlow {attrs} />"]
        lines = [f"{ind}<bpmn:sequenceFlow {attrs}>"]
        if f.listeners:
            lines.append(f"{ind}  <bpmn:extensionElements>")
            lines += [f'{ind}    <camunda:executionListener expression={quoteattr(e)} event="take" />' for e in f.listeners]
            lines.append(f"{ind}  </bpmn:extensionElements>")
        if f.condition:
            lines.append(f'{ind}  <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
                         f'{escape(f.condition)}</bpmn:conditionExpression>')
        lines.append(f"{ind}</bpmn:sequenceFlow>")
        return lines

    def _di_xml(self) -> list[str]:
        def num(v: float) -> str:
            return str(int(round(v)))

        lines = ['  <bpmndi:BPMNDiagram id="diagram_' + self.key.replace("-", "_") + '">',
                 f'    <bpmndi:BPMNPlane id="plane_{self.key.replace("-", "_")}" bpmnElement="{self.key}">']
        for sp in self.subprocesses:
            lines.append(f'      <bpmndi:BPMNShape id="{sp.id}_di" bpmnElement="{sp.id}" isExpanded="true">')
            lines.append(f'        <dc:Bounds x="{num(sp.x)}" y="{num(sp.y)}" width="{num(sp.w)}" height="{num(sp.h)}" />')
            lines.append("      </bpmndi:BPMNShape>")
        # hosts before boundary events so Modeler draws boundaries on top
        ordered = [n for n in self.nodes.values() if not n.attached_to] + [n for n in self.nodes.values() if n.attached_to]
        for n in ordered:
            x, y, wd, ht = n.bounds()
            extra = ' isMarkerVisible="true"' if n.shape == "gateway" else ""
            lines.append(f'      <bpmndi:BPMNShape id="{n.id}_di" bpmnElement="{n.id}"{extra}>')
            lines.append(f'        <dc:Bounds x="{num(x)}" y="{num(y)}" width="{wd}" height="{ht}" />')
            if n.name and n.shape in ("event", "gateway"):
                lw = 110
                lh = 27 if len(n.name) > 18 else 14
                if n.label == "top":
                    ly = y - lh - 6
                elif n.label in ("left", "right"):
                    lw = 80
                    lh = 27 if len(n.name) > 12 else 14
                    lx = x + wd + 4 if n.label == "right" else x - lw - 4
                    lines.append("        <bpmndi:BPMNLabel>")
                    lines.append(f'          <dc:Bounds x="{num(lx)}" y="{num(y + ht + 2)}" width="{lw}" height="{lh}" />')
                    lines.append("        </bpmndi:BPMNLabel>")
                    lines.append("      </bpmndi:BPMNShape>")
                    continue
                else:
                    ly = y + ht + 6
                lines.append("        <bpmndi:BPMNLabel>")
                lines.append(f'          <dc:Bounds x="{num(n.x - lw / 2)}" y="{num(ly)}" width="{lw}" height="{lh}" />')
                lines.append("        </bpmndi:BPMNLabel>")
            lines.append("      </bpmndi:BPMNShape>")
        for f in self.flows:
            lines.append(f'      <bpmndi:BPMNEdge id="{f.id}_di" bpmnElement="{f.id}">')
            for px, py in f.waypoints:
                lines.append(f'        <di:waypoint x="{num(px)}" y="{num(py)}" />')
            if f.name:
                (ax, ay), (bx, by) = f.waypoints[0], f.waypoints[1]
                if abs(ax - bx) < 1:  # vertical first segment: label to its right
                    lx, ly = ax + 6, (ay + by) / 2 - 7 if abs(by - ay) < 60 else ay + (8 if by > ay else -22)
                else:
                    lx, ly = ax + 8, ay - 18
                lines.append("        <bpmndi:BPMNLabel>")
                width = max(30, 7 * len(f.name))
                lines.append(f'          <dc:Bounds x="{num(lx)}" y="{num(ly)}" width="{width}" height="14" />')
                lines.append("        </bpmndi:BPMNLabel>")
            lines.append("      </bpmndi:BPMNEdge>")
        lines.append("    </bpmndi:BPMNPlane>")
        lines.append("  </bpmndi:BPMNDiagram>")
        return lines
