// Texts of the case tiles, Chinese and English. The language is the page's (app.js keeps it in localStorage).

export const TEXT = {
  zh: {
    all: "全部", district: "区", street: "街道", category: "类别", severity: "紧急程度", state: "状态", source: "来源",
    casesEmpty: "暂无案件", map: "网格地图", mapShow: "地图", mapHide: "隐藏地图", noimage: "无图片", camera: "摄像头", due: "期限", overdue: "已超期",
    left: "剩余", dept: "处置部门", mute: "静音", unmute: "取消静音", large: "大字", normal: "标准字号",
    close: "关闭", shotsTitle: "案件图片", cleanFrame: "原始画面", annotated: "标注抓拍", photo: "现场照片",
    ok: "确定", cancel: "取消", refused: "操作被拒绝：", allowedNow: "当前可执行：", none: "无",
    failed: "请求失败，请重试。", yellow: "黄牌", red: "红牌",
    ask: { dispatch: "派往部门", note: "备注内容", duplicate: "重复的案件编号 (ID)", extend: "延期工作日", reject: "原因" },
    patrol: {
      title: "巡查", coverage: "按期覆盖", p95: "复查间隔 p95", inflight: "巡查中", offline: "离线摄像头", workers: "巡查进程",
      downFor: "离线", failures: "连续失败", never: "从未巡查", health: "状态", grid: "网格", lastVisit: "上次巡查",
      lastError: "最近错误", revisit: "复查目标", visitNow: "立即巡查", queued: "已加入巡查队列",
      healths: { unknown: "未知", online: "在线", degraded: "不稳定", offline: "离线" },
    },
    sup: {
      propose: "建议屏蔽此区域", proposed: "已提交屏蔽建议", title: "误报与屏蔽", rate: "误报率", cases: "案件",
      confirm: "确认", reject: "驳回", none: "暂无屏蔽建议", states: { proposed: "待确认", confirmed: "已生效", rejected: "已驳回" },
    },
    sev: { urgent: "紧急", normal: "一般" },
    states: {
      reported: "上报", accepted: "受理", filed: "立案", dispatched: "已派遣", handling: "处置中", handled: "处置完成",
      checking: "核查中", closed: "结案", rejected: "不予受理", returned: "退回", rework: "返工", extension: "延期",
      suspended: "挂起", escalated: "升级",
    },
    sources: { grid_worker: "网格员", hotline: "12345 热线", citizen: "市民", camera: "智能抓拍", sensor: "物联感知", external: "外部系统" },
    actions: {
      accept: "受理", reject: "不予受理", false_alarm: "误报", duplicate: "重复", file: "立案", dispatch: "派遣",
      send_back: "退回", start: "开始处置", extend: "延期", handled: "处置完成", check: "核查", rework: "返工",
      close: "结案", suspend: "挂起", resume: "恢复", escalate: "升级", note: "备注",
    },
  },
  en: {
    all: "All", district: "District", street: "Street", category: "Category", severity: "Severity", state: "State",
    source: "Source", casesEmpty: "No cases", map: "Grid map", mapShow: "Map", mapHide: "Hide map", noimage: "No picture", camera: "Camera", due: "Due", overdue: "Overdue",
    left: "left", dept: "Department", mute: "Mute", unmute: "Unmute", large: "Large type", normal: "Normal type",
    close: "Close", shotsTitle: "Pictures of the case", cleanFrame: "Clean frame", annotated: "Annotated",
    photo: "Photo", ok: "OK", cancel: "Cancel", refused: "Refused: ", allowedNow: "Allowed now: ", none: "none",
    failed: "The request failed. Try again.", yellow: "Yellow card", red: "Red card",
    ask: { dispatch: "Department", note: "Note", duplicate: "Id of the case it repeats", extend: "Working days", reject: "Reason" },
    patrol: {
      title: "Patrol", coverage: "Within target", p95: "Revisit p95", inflight: "Visits in flight", offline: "Cameras offline",
      workers: "Workers alive", downFor: "offline for", failures: "failures in a row", never: "never visited",
      health: "Health", grid: "Grid", lastVisit: "Last visit", lastError: "Last error", revisit: "Revisit target",
      visitNow: "Visit now", queued: "Visit queued",
      healths: { unknown: "Unknown", online: "Online", degraded: "Degraded", offline: "Offline" },
    },
    sup: {
      propose: "Propose a suppression", proposed: "Suppression proposed", title: "False alarms and suppressions",
      rate: "False-alarm rate", cases: "cases", confirm: "Confirm", reject: "Reject", none: "No suppressions",
      states: { proposed: "Proposed", confirmed: "Confirmed", rejected: "Rejected" },
    },
    sev: { urgent: "Urgent", normal: "Normal" },
    states: {
      reported: "Reported", accepted: "Accepted", filed: "Filed", dispatched: "Dispatched", handling: "Handling",
      handled: "Handled", checking: "Checking", closed: "Closed", rejected: "Rejected", returned: "Returned",
      rework: "Rework", extension: "Extended", suspended: "Suspended", escalated: "Escalated",
    },
    sources: { grid_worker: "Grid worker", hotline: "12345 hotline", citizen: "Citizen", camera: "Camera", sensor: "Sensor", external: "External" },
    actions: {
      accept: "Accept", reject: "Reject", false_alarm: "False alarm", duplicate: "Duplicate", file: "File",
      dispatch: "Dispatch", send_back: "Send back", start: "Start", extend: "Extend", handled: "Handled",
      check: "Check", rework: "Rework", close: "Close", suspend: "Suspend", resume: "Resume", escalate: "Escalate",
      note: "Note",
    },
  },
};

let current = localStorage.getItem("gridwatch.lang") === "en" ? "en" : "zh";

export function setLang(lang) {
  current = lang === "en" ? "en" : "zh";
}

export const lang = () => current;
export const t = () => TEXT[current];

// A label from one of the tables, or the raw value as text when the table does not know it.
export function label(table, key) {
  const value = t()[table][key];
  return typeof value === "string" ? value : String(key ?? "");
}

export function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return when.toLocaleString(current === "zh" ? "zh-CN" : "en-GB", {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
  });
}

export function formatSpan(ms) {
  const minutes = Math.max(1, Math.round(Math.abs(ms) / 60000));
  if (minutes < 60) return minutes + (current === "zh" ? " 分钟" : " min");
  const hours = Math.round(minutes / 60);
  if (hours < 48) return hours + (current === "zh" ? " 小时" : " h");
  return Math.round(hours / 24) + (current === "zh" ? " 天" : " d");
}
